"""The layering is a contract, checked on the import graph of every module under decocare/
(module-level and function-level imports alike; only the ``python -m`` shims -- an ``if
__name__ == "__main__":`` block, or a ``__main__.py`` -- may reach the command lines).

* no import cycles;
* each module imports only modules of its own layer or below (``LAYERS``, as ARCHITECTURE.md);
* command-line code only in decocare/tools/: nothing else imports argparse or decocare.tools;
* the emulator, the URL handlers and the replay never reach the client (link, stick, session,
  connect), not even through another module: a client bug must not be mirrored by them.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "decocare"

# layer of each module (a package prefix covers its modules); ARCHITECTURE.md has the same table
LAYERS = {
    "decocare": 0, "decocare.errors": 0, "decocare.lib": 0, "decocare.models": 0,
    "decocare.vocabulary": 0, "decocare.pages": 0, "decocare.frames": 0, "decocare.radiowindow": 0,
    "decocare.journal": 0,
    "decocare.link": 1,
    "decocare.stick": 2,
    "decocare.session": 3,
    "decocare.decoders": 4, "decocare.commands": 4, "decocare.records": 4, "decocare.history": 4,
    "decocare.cgm": 4,
    "decocare.scan": 5, "decocare.connect": 5, "decocare.download": 5, "decocare.dosing": 5,
    "decocare.explain": 5, "decocare.replay": 5, "decocare.emulator": 5,
    "decocare.exports": 5, "decocare.report": 5,
    "decocare.urlhandler": 6,
    "decocare.tools": 7,
}
CLIENT = {"decocare.link", "decocare.stick", "decocare.session", "decocare.connect"}
DEVICE_SIDES = ("decocare.emulator", "decocare.urlhandler", "decocare.replay")


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_main_guard(node):
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def imports(name):
    """The decocare modules (and 'argparse') ``name`` imports outside its ``python -m`` shim."""
    path = MODULES[name]
    if path.name == "__main__.py":
        return set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def visit(node):
        if _is_main_guard(node):
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = ["%s.%s" % (base, alias.name) for alias in node.names]
            found.update(n for n in names if n in MODULES)
            if any(n not in MODULES for n in names):       # a name from the module itself
                found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m == "argparse" or m in MODULES}


GRAPH = {name: imports(name) - {name} for name in MODULES}


def layer(name):
    best = max((prefix for prefix in LAYERS if name == prefix or name.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def reach(name):
    seen, todo = set(), [name]
    while todo:
        for dep in GRAPH.get(todo.pop(), ()):
            if dep not in seen and dep in MODULES:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_the_graph_is_read():
    assert "decocare.frames" in GRAPH["decocare.stick"] and "decocare.link" in GRAPH["decocare.connect"]
    assert len(MODULES) > 40


def test_no_import_cycles():
    cycles = sorted(name for name in MODULES if name in reach(name))
    assert not cycles, "modules importing themselves round a circle: %s" % cycles


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name):
    up = sorted(dep for dep in GRAPH[name] if dep in MODULES and layer(dep) > layer(name))
    assert not up, "%s (layer %d) imports %s from above it" % (name, layer(name), up)


def test_command_lines_only_in_tools():
    outside = sorted(name for name in MODULES if not name.startswith("decocare.tools")
                     and ("argparse" in GRAPH[name] or any(d.startswith("decocare.tools") for d in GRAPH[name])))
    assert not outside, "argument parsing or tools imported by library modules: %s" % outside


def test_devices_never_reach_the_client():
    bad = {name: sorted(reach(name) & CLIENT) for name in MODULES
           if name.startswith(DEVICE_SIDES) and reach(name) & CLIENT}
    assert not bad, "the emulator/replay/URL handlers reach client code: %s" % bad


def test_every_module_has_a_layer():
    assert all(layer(name) is not None for name in MODULES)

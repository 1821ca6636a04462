"""Packaging: every console entry point in setup.py resolves to a function and has its bin/
script of the same name (a checkout and an install offer the same tools); the udev rule ships
as package data; .ci/run runs exactly the README's test command."""
import ast
import importlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def setup_tools():
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "TOOLS":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no TOOLS table")


def test_entry_points_resolve_and_match_bin():
    tools = setup_tools()
    assert {"mm-send-comm.py", "mm-latest.py", "mm-pages.py", "mm-history.py", "mm-glucose.py"} <= set(tools)
    for name, target in tools.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), target
        assert (ROOT / "bin" / name).is_file(), "bin/%s missing for the entry point" % name


def test_udev_rule_is_package_data():
    text = (ROOT / "setup.py").read_text()
    assert '"etc/*.rules"' in text and (ROOT / "decocare" / "etc" / "80-medtronic-carelink.rules").is_file()


def readme_block(title):
    """The shell lines of the first ```sh block after the heading ``title``."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(title):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readme_test_command():
    (command,) = readme_block("### 2.")
    ci = (ROOT / ".ci" / "run").read_text()
    for part in command.split(" && "):
        assert part in ci, "%r of the README's test command is not in .ci/run" % part
    assert '"$rc" = 5' in ci     # pytest's "no tests collected" is a failure

"""Packaging: every tool of the registry resolves to a function, has its console script (setup.py
reads the registry) and its script in bin/ or at the top of the checkout (a checkout and an
install offer the same tools), and every ``python -m decocare.X`` of the registry runs; the
udev rule ships as package data; .ci/run runs exactly the README's test command."""
import pathlib
import re
import runpy
import subprocess
import sys

import pytest

from decocare.tools import registry

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_entry_points_resolve_and_match_scripts():
    assert {"mm-send-comm.py", "mm-latest.py", "mm-pages.py", "mm-history.py", "mm-glucose.py",
            "mm-bolus.py", "mm-openaps.py", "list_history.py"} <= set(registry.INSTALLED)
    for name, target, _ in registry.TOOLS:
        assert callable(registry.resolve(name)), target
        if name in registry.INSTALLED:
            assert callable(getattr(registry, registry.entry_name(name)))
            script = ROOT / "bin" / name if (ROOT / "bin" / name).is_file() else ROOT / name
            assert script.is_file(), "no script for %s in bin/ or at the top" % name
            assert 'launch("%s")' % name in script.read_text()


def test_setup_installs_exactly_the_registry():
    captured = {}
    import setuptools
    real = setuptools.setup
    setuptools.setup = lambda **kw: captured.update(kw)
    try:
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = real
    scripts = captured["entry_points"]["console_scripts"]
    assert sorted(s.split(" = ")[0] for s in scripts) == sorted(registry.INSTALLED)


@pytest.mark.parametrize("name", [n for n, _, _ in registry.TOOLS if n.startswith("decocare.")])
def test_python_dash_m_runs_each_module_tool(name):
    done = subprocess.run([sys.executable, "-m", name, "--help"], capture_output=True, text=True,
                          timeout=60, cwd=str(ROOT))
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m " + name), done.stderr


def test_udev_rule_is_package_data():
    text = (ROOT / "setup.py").read_text()
    assert '"etc/*.rules"' in text and (ROOT / "decocare" / "etc" / "80-medtronic-carelink.rules").is_file()


def readme_block(title):
    """The shell lines of the first ```sh block after the heading ``title``."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(title):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readme_commands_as_written():
    """.ci/run reads both commands from README.md and runs them in order in one shell."""
    script = (ROOT / ".ci" / "run").read_text()
    function = re.search(r"^readme_block \(\).*?^}", script, re.S | re.M).group(0)
    out = subprocess.run(["bash", "-c", function + "\n" +
                          r"readme_block '^### 1\. '; echo ---; readme_block '^### 2\. '"],
                         cwd=str(ROOT), capture_output=True, text=True, timeout=30)
    demo, tests = out.stdout.split("---\n")
    assert demo.strip().splitlines() == readme_block("### 1.")
    assert tests.strip().splitlines() == readme_block("### 2.")
    assert 'eval "$DEMO"' in script and 'eval "$TESTS"' in script
    assert script.index('eval "$DEMO"') < script.index('eval "$TESTS"')
    assert '"$rc" = 5' in script     # pytest's "no tests collected" is a failure

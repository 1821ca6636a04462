"""Test fixtures shared by every test module.

Real material (pages, transcripts, CareLink exports) is read from ../shared beside the
checkout, or from $DECOCARE_SHARED; tests that need it skip with the reason when it is absent.
"""
import atexit
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(os.environ.get("DECOCARE_SHARED", ROOT.parent / "shared"))
OREF0_VERSION = "0.7.1"

# The pumps' radio-window file (decocare.radiowindow.RadioWindow) lives in a temporary folder for
# the whole test session (the tools started as subprocesses inherit it), never the user's.
os.environ["DECOCARE_STATE_DIR"] = tempfile.mkdtemp(prefix="decocare-state-")
atexit.register(shutil.rmtree, os.environ["DECOCARE_STATE_DIR"], True)


def shared_path(*parts):
    """Path inside the shared material, or skip the calling test when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip("real material not found at %s (set DECOCARE_SHARED to the shared/ folder)" % path)
    return path


@pytest.fixture(scope="session")
def shared_dir():
    return shared_path()


@pytest.fixture(scope="session")
def page_index():
    """The pages of ../shared/fixtures/pages/index.json (list of dicts)."""
    with open(shared_path("fixtures", "pages", "index.json")) as fh:
        return json.load(fh)["pages"]


@pytest.fixture(scope="session")
def transcripts_dir():
    return shared_path("fixtures", "transcripts")


@pytest.fixture(scope="module")
def oref0():
    """oref0 (npm, OREF0_VERSION): $DECOCARE_OREF0 (a folder with node_modules/oref0), else installed
    once into ~/.cache/decocare/oref0; a skip with the reason when node or npm cannot."""
    if not shutil.which("node"):
        pytest.skip("node is not installed: oref0 cannot run")
    base = pathlib.Path(os.environ.get("DECOCARE_OREF0") or
                        pathlib.Path.home() / ".cache" / "decocare" / "oref0")
    module = base / "node_modules" / "oref0"
    if not (module / "lib" / "iob" / "history.js").exists():
        if not shutil.which("npm"):
            pytest.skip("oref0 is not installed at %s and npm is missing" % base)
        base.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(["npm", "install", "--prefix", str(base), "--no-audit", "--no-fund",
                                   "--ignore-scripts", "oref0@" + OREF0_VERSION],
                                  capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip("npm install oref0 timed out")
        if done.returncode:
            pytest.skip("npm install oref0 failed: %s" % done.stderr.strip().splitlines()[-1:])
    return module

"""The README's first command, run in a temporary copy of the repository (the tracked files, as a
fresh clone has them), then ``. bin/common && SERIAL=208850 run_regress``.

The only changes to the README's command keep it off the network: the virtual environment sees
this interpreter's packages (--system-site-packages, and PYTHONPATH = this interpreter's
site-packages, so it also works when the tests themselves run inside the README's .venv, whose
packages a venv made from the base interpreter cannot see) and pip installs from them (--no-index).
"""
import json
import os
import pathlib
import re
import shutil
import site
import subprocess
import sys

import pytest

from decocare.emulator import Emulator
from decocare.pages import page_crc_ok

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOGS = ("baseline.stick", "session", "stick", "commands", "download", "postmortem.stick")


def readme_command(title):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(title):]
    return re.search(r"```sh\n(.*?)\n```", section, re.S).group(1).strip()


def offline(command):
    """The README's command with the network taken out (and nothing else changed)."""
    venv = "python3 -m venv .venv"
    pip = "pip install pyserial python-dateutil"
    assert venv in command and pip in command and command.endswith("./status-quo.sh"), command
    return command.replace(venv, "%s -m venv --system-site-packages .venv" % sys.executable) \
                  .replace(pip, "pip install --no-index pyserial python-dateutil")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DECOCARE_PORT", "DECOCARE_SERIAL", "SERIAL", "PORT", "DECOCARE_MODEL", "PYTHONPATH",
                        "VIRTUAL_ENV")}
    env["PYTHONPATH"] = os.pathsep.join(site.getsitepackages())   # pyserial, dateutil: no network
    env.update(extra)
    return env


def sh(command, cwd, env=None, timeout=120):
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The tracked files copied to a temporary folder (what a fresh clone holds)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    dest = tmp_path_factory.mktemp("clone") / "decocare"
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def demo(clone):
    """The README's first command, run once; the emulated pump's pages built the same day."""
    before = Emulator(model="523", serial="208850").pump.history.pages
    res = sh(offline(readme_command("### 1.")), clone)
    after = Emulator(model="523", serial="208850").pump.history.pages
    return res, (before, after)


def test_demo_leaves_logs_pages_and_explain(clone, demo):
    res, emulator_pages = demo
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    logs = clone / "logs"
    for name in LOGS:
        assert (logs / (name + ".log")).stat().st_size > 0, name
    assert (clone / "status-quo.log").read_text().count(">>> ") >= len(LOGS)
    pages = sorted(logs.glob("ReadHistoryData-page-*.data"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert pages, "no pages downloaded"
    data = [p.read_bytes() for p in pages]
    assert all(page_crc_ok(d) for d in data)
    assert data in [list(e) for e in emulator_pages]          # byte for byte what the emulator keeps
    explain = (logs / "explain.log").read_text()
    assert "model 523, serial 208850" in explain
    assert "history pages: %d (0-%d), every CRC valid" % (len(data), len(data) - 1) in explain
    assert "errors:        none" in explain
    assert explain in res.stdout                                # the summary is shown too
    assert not (clone / "carelink.ttyUSB0").exists()            # the emulated pump was stopped


def test_run_regress_writes_analysis(clone, demo):
    env = clean_env(PATH="%s:%s" % (clone / ".venv" / "bin", os.environ["PATH"]))
    res = sh(". bin/common && SERIAL=208850 run_regress", clone, env)
    assert res.returncode == 0, res.stderr
    pages = sorted((clone / "logs").glob("ReadHistoryData-page-*.data"))
    out = clone / "analysis" / "208850"
    for page in pages:
        text = (out / (page.stem + ".markdown")).read_text()
        assert "CRC ok, complete" in text and "## " in text


def test_run_export_writes_the_csv_treatments_and_report(clone, demo):
    env = clean_env(PATH="%s:%s" % (clone / ".venv" / "bin", os.environ["PATH"]))
    res = sh(". bin/common && SERIAL=208850 run_export", clone, env)
    assert res.returncode == 0, res.stderr
    out = clone / "analysis" / "208850"
    csv_text = (out / "carelink-export.csv").read_text()
    assert csv_text.startswith("Medtronic Diabetes CareLink Personal Data Export File")
    assert "Raw-Type,Raw-Values" in csv_text and "BolusNormal" in csv_text
    treatments = json.loads((out / "nightscout-treatments.json").read_text())
    assert treatments and all(t["enteredBy"] == "decocare" for t in treatments)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "no report pictures" in res.stdout
    else:
        pictures = list((out / "report").glob("report-*.png"))
        assert pictures and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)


def _readable(text):
    """A log's own lines: no hexdumps or USB-op lines (how often the stick was polled depends on
    timing), no stick counters, durations and the clock line replaced (real data and times)."""
    out = []
    for line in text.splitlines():
        if re.match(r"^[0-9a-f]{4}   0x|^INFO:decocare\.link:usb\.|.*stats: |^clock: ", line):
            continue
        out.append(re.sub(r"\d+(\.\d+)? s\b", "<t> s", line))
    return out


def test_rerun_differs_only_in_real_data_and_times(clone, demo):
    first = {p.name: _readable(p.read_text()) for p in (clone / "logs").glob("*.log")}
    res = sh("PATH=.venv/bin:$PATH ./status-quo.sh", clone)
    assert res.returncode == 0, res.stderr
    second = {p.name: _readable(p.read_text()) for p in (clone / "logs").glob("*.log")}
    assert set(first) == set(second) and len(first) == len(LOGS) + 1
    first.pop("commands.log"), second.pop("commands.log")      # holds the pump clock
    assert first == second


def test_failed_experiments_are_reported_and_the_others_still_run(clone, demo, tmp_path):
    res = sh("PATH=.venv/bin:$PATH ./status-quo.sh %s 208850" % (tmp_path / "ttyUSB9"), clone)
    assert res.returncode == 4                                  # the first failure's code: port
    logs = clone / "logs"
    assert all((logs / (name + ".log")).exists() for name in LOGS)
    explain = (logs / "explain.log").read_text()
    for name in LOGS:
        assert "%s exit 4: " % name in explain
    assert "no such port" in explain and "history pages: none downloaded" in explain
    assert not list(logs.glob("*.data"))                        # the previous run's pages are gone


def test_bad_arguments(clone):
    assert sh("./status-quo.sh /dev/ttyUSB0", clone).returncode == 2
    res = sh("./status-quo.sh /dev/ttyUSB0 12345", clone)
    assert res.returncode == 2 and "six digits" in res.stderr


def test_a_live_emulator_link_is_not_taken_over(clone, demo):
    explain = clone / "logs" / "explain.log"
    before = explain.read_text()
    (clone / "carelink.ttyUSB0").write_text("")          # stands for another emulated pump's port
    try:
        res = sh("PATH=.venv/bin:$PATH ./status-quo.sh", clone)
    finally:
        (clone / "carelink.ttyUSB0").unlink()
    assert res.returncode == 1 and "in use" in res.stderr + res.stdout
    assert explain.read_text() == before                  # the previous run's logs are kept


def test_a_relative_port_is_the_callers(clone, demo, tmp_path):
    """status-quo.sh cd's to its own folder first: a relative PORT is resolved against the folder
    it was called from, not against the script's."""
    res = subprocess.run(["bash", str(clone / "status-quo.sh"), "ttyUSB9", "208850"], cwd=str(tmp_path),
                         env=clean_env(PATH=str(clone / ".venv" / "bin") + os.pathsep + os.environ["PATH"]),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 4, res.stdout[-2000:]
    explain = (clone / "logs" / "explain.log").read_text()
    assert "port:          %s" % (tmp_path / "ttyUSB9") in explain
    assert "cannot use port %s: no such port" % (tmp_path / "ttyUSB9") in explain


def test_the_emulated_run_leaves_no_emulator_running(clone, demo):
    """stop_emulator kills the emulator process itself (not a subshell around it)."""
    res = sh("PATH=.venv/bin:$PATH ./status-quo.sh", clone)
    assert res.returncode == 0, res.stderr
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = (pathlib.Path("/proc") / pid / "cmdline").read_bytes().split(b"\0")
                cwd = os.readlink("/proc/%s/cwd" % pid)
            except OSError:
                continue
            if b"decocare.emulator" in cmd and cwd == str(clone):
                left.append(pid)
    assert not left, "emulator processes still running: %s" % left

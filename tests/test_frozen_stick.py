"""Bounded, named failures (issue 10): a stick that freezes (the emulator process stopped with
SIGSTOP: the port stays, nothing answers) ends every tool within 30 s with one line naming what
did not answer; a stick that vanishes (the emulator process killed: the pty goes away) says the
stick was unplugged, exit 4; a pump out of range (with real timing, wake-up burst included)
ends within 30 s naming the pump.  All cases run at once, each on its own emulator process.
"""
import concurrent.futures
import json
import pathlib
import signal
import subprocess
import sys
import time

from decocare import errors

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "benchmarks"))
from soak import EmulatorProcess, env  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERIAL = "208850"
BOUND = 30.0            # the bound, from the moment the stick froze or the tool started

# (name, tool command, when to act ((op, n): the moment the pump executed its n-th op, by its
#  ledger; None: before the tool starts), action, expected exit code, words the last stderr
#  line must hold)
STICK_SILENT = "the stick stopped answering"
CASES = [
    ("download, frozen mid-history", ["-m", "decocare.download", "{port}", SERIAL, "--out", "{out}"],
     ("ReadHistoryData", 2), "freeze", errors.EXIT_NO_RESPONSE, [STICK_SILENT, "missing"]),
    ("download --glucose, frozen at once", ["-m", "decocare.download", "{port}", SERIAL, "--out", "{out}",
                                            "--glucose"], ("ReadCurGlucosePageNumber", 1), "freeze", errors.EXIT_NO_RESPONSE, ["stick"]),
    ("mm-latest, frozen mid-read", ["bin/mm-latest.py", "--port", "{port}", "--serial", SERIAL, "100000"],
     ("ReadHistoryData", 1), "freeze", errors.EXIT_NO_RESPONSE, ["stick"]),
    ("commands, frozen before the start", ["-m", "decocare.commands", "{port}", SERIAL], None, "freeze",
     errors.EXIT_NO_RESPONSE, ["stick", "did not answer"]),
    ("stick, frozen before the start", ["-m", "decocare.stick", "{port}"], None, "freeze",
     errors.EXIT_NO_RESPONSE, ["stick", "did not answer"]),
    ("bolus, frozen after the send", ["bin/mm-bolus.py", "--port", "{port}", "--serial", SERIAL, "1.0",
                                      "--yes"], ("Bolus", 1), "freeze", errors.EXIT_UNCERTAIN, ["UNCERTAIN"]),
    ("download, unplugged mid-history", ["-m", "decocare.download", "{port}", SERIAL, "--out", "{out}"],
     ("ReadHistoryData", 2), "unplug", errors.EXIT_PORT, ["unplugged", "missing"]),
    ("mm-latest, unplugged mid-read", ["bin/mm-latest.py", "--port", "{port}", "--serial", SERIAL, "100000"],
     ("ReadHistoryData", 1), "unplug", errors.EXIT_PORT, ["unplugged"]),
    # (a port gone before the start is the matrix's "port that does not exist", tests/test_bad_input.py:
    # here a killed emulator's pty number may be reused at once by another case's emulator)
    ("bolus, unplugged after the send", ["bin/mm-bolus.py", "--port", "{port}", "--serial", SERIAL, "1.0",
                                         "--yes"], ("Bolus", 1), "unplug", errors.EXIT_UNCERTAIN, ["UNCERTAIN"]),
    ("session, pump out of range (real timing)", ["-m", "decocare.session", "{port}", SERIAL], None,
     "out_of_range", errors.EXIT_NO_RESPONSE, ["pump did not answer"]),
]


def _ledger_count(path, op):
    try:
        return sum(json.loads(line)["op"] == op for line in pathlib.Path(path).read_text().splitlines()
                   if line.strip())
    except (OSError, ValueError):       # a line being written
        return 0


def run_case(case, folder):
    name, command, when, action, code, words = case
    folder.mkdir(parents=True)
    ledger = folder / "ledger.jsonl"
    real = action == "out_of_range"
    emu = EmulatorProcess(str(folder), None, "out_of_range" if real else None,
                          timing="real" if real else "fast", ledger=ledger, serial=SERIAL, cur_page=None)
    try:
        act = {"freeze": signal.SIGSTOP, "unplug": signal.SIGKILL}.get(action)
        args = [a.format(port=emu.port, out=folder / "out") for a in command]
        if when is None and act is not None:
            emu.proc.send_signal(act)
            if action == "unplug":
                emu.proc.wait()
        began = time.monotonic()
        proc = subprocess.Popen([sys.executable] + args, cwd=str(ROOT), env=env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if when is not None:                        # the moment the pump executed that op
            deadline = time.monotonic() + 20
            while _ledger_count(ledger, when[0]) < when[1] and time.monotonic() < deadline:
                time.sleep(0.002)
        acted = time.monotonic()
        if when is not None and act is not None:
            emu.proc.send_signal(act)
        try:
            out, err = proc.communicate(timeout=BOUND + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return name, ["no end within %.0f s" % (BOUND + 30)]
        took = time.monotonic() - (acted if when is not None else began)
        problems = []
        if took > BOUND:
            problems.append("ended %.1f s after the stick %s, bound %.0f s" % (took, action, BOUND))
        if proc.returncode != code:
            problems.append("exit %d, expected %d" % (proc.returncode, code))
        last = err.strip().splitlines()[-1] if err.strip() else ""
        for word in words:
            if word not in last:
                problems.append("%r not in the last stderr line" % word)
        if "Traceback" in err:
            problems.append("traceback")
        if problems:
            problems.append("stderr: %s" % err.strip()[-700:])
        return name, problems
    finally:
        if emu.proc.poll() is None:
            emu.proc.send_signal(signal.SIGCONT)
        emu.stop()


def test_frozen_and_vanished_sticks_end_in_bounded_time_naming_what_failed(tmp_path):
    with concurrent.futures.ThreadPoolExecutor(len(CASES)) as pool:
        done = list(pool.map(lambda ic: run_case(ic[1], tmp_path / str(ic[0])), enumerate(CASES)))
    failures = ["%s: %s" % (name, "; ".join(problems)) for name, problems in done if problems]
    assert not failures, "\n".join(failures)
    # the download frozen mid-history: what was saved before stays (whole pages); the manifest
    # says incomplete and names the missing pages and why
    out = tmp_path / "0" / "out"
    manifest = json.loads((out / "ReadHistoryData.manifest.json").read_text())
    assert not manifest["complete"] and manifest["missing"]
    assert all((out / p["file"]).exists() for p in manifest["pages"] if p["outcome"] == "saved")
    assert all(STICK_SILENT in p["error"] for p in manifest["pages"] if p["outcome"] == "missing")

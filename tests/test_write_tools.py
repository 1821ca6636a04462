"""The mm-* write tools as a user runs them: the captured real temp-basal session replayed, the
emulator behind --port, and every error path (bad values, limits, unsupported models, missing
--yes, missing port)."""
import json
import os
import subprocess
import sys

import pytest

from decocare import errors
from decocare.emulator import Emulator
from decocare.tools import writes

from conftest import ROOT

SERIAL = "208850"
CAPTURE = "analysis__set-temp-basal.markdown.jsonl"


def run_tool(main, capsys, *argv):
    """(exit code, parsed JSON or text) of one in-process tool run."""
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, (json.loads(out) if "--json" in argv else out)


@pytest.fixture
def emu():
    with Emulator("523", SERIAL, weeks=1) as emulator:
        yield emulator


def port(emu):
    return ["--port", emu.url, "--serial", SERIAL]


def doses(emu, op):
    return [e for e in emu.ledger if e["op"] == op]


# --- the real capture --------------------------------------------------------------------------

def test_captured_temp_basal_replayed_byte_identical(transcripts_dir, capsys):
    path = transcripts_dir / CAPTURE
    captured = [json.loads(line) for line in path.read_text().splitlines()]
    packet = [op["hex"] for op in captured if op["dir"] == "w" and "TempBasal" in (op["note"] or "")
              and op["hex"].startswith("01")]
    assert packet == ["0100a7012088508003000001004c860050028c"]
    # The recording holds no ReadSettings: --max-basal replaces that read (the replay refuses
    # any TransmitPacket the recording does not hold, and any write that differs from it).
    code, out = run_tool(writes.temp_basals_main, capsys, "--port", "replay://%s" % path,
                         "--serial", SERIAL, "set", "--rate", "2.0", "--duration", "60",
                         "--max-basal", "2.0", "--json")
    assert code == 0 and out["outcome"] == "delivered" and out["received"] and out["recieved"]
    assert out["requested"]["packet"] == packet[0]
    assert out["verification"] == {"temp": "absolute", "rate": 2.0, "duration": 60}


def test_captured_session_without_max_basal_refuses_before_sending(transcripts_dir, capsys):
    code, out = run_tool(writes.temp_basals_main, capsys, "--port",
                         "replay://%s" % (transcripts_dir / CAPTURE), "--serial", SERIAL, "set",
                         "--rate", "2.0", "--duration", "60", "--json")
    assert code == errors.EXIT_REFUSED and out["outcome"] == "refused" and out["sent"] is False
    assert "ReadSettings" in out["reason"]


# --- the tools against the emulator ------------------------------------------------------------

def test_bolus_tool(emu, capsys):
    code, out = run_tool(writes.bolus_main, capsys, *port(emu), "2.5", "--yes", "--json")
    assert code == 0 and out["outcome"] == "delivered" and out["_type"] == "BolusRequest"
    assert out["requested"]["units"] == 2.5 and out["requested"]["params"] == "0064"
    assert set(out) >= {"status", "bolusing", "suspended", "received", "recieved"}
    assert [e["units"] for e in doses(emu, "Bolus")] == [2.5]
    code, out = run_tool(writes.bolus_main, capsys, *port(emu), "1", "--yes", "--json")
    assert code == errors.EXIT_REFUSED and "in progress" in out["reason"]
    assert len(doses(emu, "Bolus")) == 1


def test_bolus_needs_yes_and_dry_run_sends_nothing(emu, capsys):
    with pytest.raises(SystemExit) as exit_:
        writes.bolus_main(port(emu) + ["1.0"])
    assert exit_.value.code == errors.EXIT_USAGE and "--yes" in capsys.readouterr().err
    code, out = run_tool(writes.bolus_main, capsys, *port(emu), "1.0", "--dry-run", "--json")
    assert code == 0 and out["outcome"] == "dry-run" and out["sent"] is False
    assert out["requested"]["packet"].startswith("0100a701208850")
    assert doses(emu, "Bolus") == []


@pytest.mark.parametrize("argv, why", [
    (["12.0", "--yes"], "max bolus"),
    (["1.03", "--yes"], "not a multiple"),
    (["30", "--yes"], "outside"),
])
def test_bolus_refusals(emu, capsys, argv, why):
    code, out = run_tool(writes.bolus_main, capsys, *port(emu), *argv, "--json")
    assert code == errors.EXIT_REFUSED and why in out["reason"] and not out["sent"]
    assert doses(emu, "Bolus") == []


def test_temp_basal_tool(emu, capsys):
    code, out = run_tool(writes.temp_basals_main, capsys, *port(emu), "set", "--rate", "0.975",
                         "--duration", "90", "--json")
    assert code == 0 and out["verification"] == {"temp": "absolute", "rate": 0.975, "duration": 90}
    code, out = run_tool(writes.temp_basals_main, capsys, *port(emu), "query")
    assert json.loads(out)["rate"] == 0.975
    code, text = run_tool(writes.temp_basals_main, capsys, *port(emu), "cancel")
    assert code == 0 and text.startswith("delivered: TempBasal")
    code, out = run_tool(writes.temp_basals_main, capsys, *port(emu), "percent", "--percent", "60",
                         "--duration", "30", "--json")
    assert code == 0 and out["verification"]["temp"] == "percent"


@pytest.mark.parametrize("argv, why", [
    (["set", "--rate", "2.5", "--duration", "30"], "max basal 2.0"),
    (["set", "--rate", "1.03", "--duration", "30"], "not a multiple"),
    (["set", "--rate", "1.0", "--duration", "45"], "multiple of 30"),
    (["percent", "--percent", "150", "--duration", "30"], "0 to 100"),
])
def test_temp_basal_refusals(emu, capsys, argv, why):
    code, out = run_tool(writes.temp_basals_main, capsys, *port(emu), *argv, "--json")
    assert code == errors.EXIT_REFUSED and why in out["reason"], out
    assert doses(emu, "TempBasal") == doses(emu, "TempBasalPercent") == []


def test_dropped_temp_basal_is_uncertain_exit_7(emu, capsys):
    emu.force("drop_args")           # the reads before it carry no arguments: the write gets it
    code = writes.temp_basals_main(port(emu) + ["set", "--rate", "1.0", "--duration", "30", "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == errors.EXIT_UNCERTAIN and out["outcome"] == "uncertain" and out["sent"]
    assert "UNCERTAIN" in captured.err
    assert doses(emu, "TempBasal") == []


def test_suspend_rtc_keys_profile_tools(emu, capsys):
    assert run_tool(writes.set_suspend_main, capsys, *port(emu), "suspend", "--json")[1]["outcome"] == "delivered"
    assert json.loads(run_tool(writes.set_suspend_main, capsys, *port(emu), "query")[1])["suspended"]
    assert run_tool(writes.set_suspend_main, capsys, *port(emu), "resume", "--json")[0] == 0
    code, out = run_tool(writes.set_rtc_main, capsys, *port(emu), "set", "--to", "2030-01-02T03:04:05",
                         "--json")
    assert code == 0 and out["verification"]["clock"].startswith("2030-01-02T03:04")
    assert json.loads(run_tool(writes.set_rtc_main, capsys, *port(emu), "query")[1])["clock"] \
        .startswith("2030-01-02")
    assert run_tool(writes.press_key_main, capsys, *port(emu), "esc", "ACT", "--json")[1]["pressed"] \
        == ["esc", "act"]
    assert run_tool(writes.select_profile_main, capsys, *port(emu), "a", "--json")[0] == 0
    assert json.loads(run_tool(writes.select_profile_main, capsys, *port(emu), "query")[1]) \
        == {"selected_pattern": "A"}


def test_x12_and_unknown_keys(capsys):
    with Emulator("512", SERIAL, weeks=1) as emu:
        code, out = run_tool(writes.bolus_main, capsys, *port(emu), "1.0", "--yes", "--json")
        assert code == errors.EXIT_REFUSED and "ReadPumpStatus" in out["reason"]
        with pytest.raises(SystemExit) as exit_:
            writes.press_key_main(port(emu) + ["left"])
        assert exit_.value.code == errors.EXIT_USAGE
        assert emu.ledger.deliveries() == []


# --- as scripts: one line on stderr, exit codes, --help -------------------------------------

def script(name, *argv):
    env = dict(os.environ, PYTHONPATH=str(ROOT), DECOCARE_PORT="", DECOCARE_SERIAL="")
    return subprocess.run([sys.executable, str(ROOT / "bin" / name)] + list(argv), env=env,
                          capture_output=True, text=True, timeout=60)


def test_missing_port_is_one_line_exit_4():
    done = script("mm-bolus.py", "--port", "/dev/no-such-stick", "--serial", SERIAL, "1.0", "--yes")
    assert done.returncode == errors.EXIT_PORT, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    done = script("mm-temp-basals.py", "--port", "/dev/no-such-stick", "--serial", SERIAL, "set",
                  "--rate", "1", "--duration", "30", "--json")
    assert done.returncode == errors.EXIT_PORT
    assert json.loads(done.stdout)["outcome"] == "refused" and json.loads(done.stdout)["sent"] is False


@pytest.mark.parametrize("name", ["mm-temp-basals.py", "mm-bolus.py", "mm-set-suspend.py",
                                  "mm-set-rtc.py", "mm-press-key.py", "mm-select-profile.py"])
def test_help_and_missing_serial(name):
    done = script(name, "--help")
    assert done.returncode == 0 and "--port" in done.stdout and "uncertain" in done.stdout
    args = {"mm-temp-basals.py": ["query"], "mm-bolus.py": ["1", "--yes"], "mm-press-key.py": ["esc"],
            "mm-set-suspend.py": ["query"], "mm-set-rtc.py": ["query"], "mm-select-profile.py": ["query"]}
    done = script(name, "--port", "emulator://", *args[name])
    assert done.returncode == errors.EXIT_USAGE and "--serial" in done.stderr


def test_stable_interface_through_a_fresh_emulator_url():
    done = script("mm-bolus.py", "--port", "emulator://?model=554&serial=208850", "--serial", SERIAL,
                  "0.5", "--yes", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["outcome"] == "delivered"
    done = script("mm-temp-basals.py", "--port", "emulator://?model=522&serial=208850", "--serial",
                  SERIAL, "set", "--rate", "1.25", "--duration", "30", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["outcome"] == "delivered"

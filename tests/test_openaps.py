"""mm-openaps.py against the in-process emulator: every file an OpenAPS rig reads, in the shape
openaps' medtronic vendor wrote with decocare 0.0.31, with the values of the emulated pump's
state; --only, --hours, --since-id, --timezone; atomic writes; the stale-file rule (a file that
could not be read is removed); nothing is touched before the output folder is known writable."""
import base64
import datetime
import json
import os
import subprocess
import sys
import time

import pytest
from dateutil import tz

from decocare import history
from decocare.emulator import Emulator, generate
from decocare.errors import (EXIT_NO_RESPONSE, EXIT_PARTIAL, EXIT_PORT, EXIT_REFUSED, EXIT_USAGE,
                             NAK_REFUSED)
from decocare.lib import crc16
from decocare.tools import openaps, registry

from test_tools import ROOT, SERIAL, ops

START = datetime.datetime(2026, 1, 10, 0, 40, 0)        # a few minutes after midnight
STATUS = ["clock.json", "clock-zoned.json", "model.json", "status.json", "reservoir.json",
          "battery.json", "temp_basal.json"]
PROFILE = ["settings.json", "bg_targets.json", "insulin_sensitivities.json", "carb_ratios.json",
           "basal_profile.json"]
HISTORY = ["pumphistory.json", "pumphistory-zoned.json"]
EVERY = STATUS + PROFILE + HISTORY + ["glucose.json"]
PARIS = "Europe/Paris"


@pytest.fixture
def emu():
    with Emulator(model="523", serial=SERIAL, timing="fast", start=START) as e:
        yield e


def mm_openaps(port, out, *extra, capsys):
    """(exit code, stderr, {file: JSON}) of one run, as the command line runs it."""
    with pytest.raises(SystemExit) as done:
        registry.run(openaps.main, ["--port", port, "--serial", SERIAL, "--out", str(out)] + list(extra),
                     prog="mm-openaps.py")
    err = capsys.readouterr().err
    files = {name: json.loads((out / name).read_text()) for name in
             (sorted(os.listdir(out)) if out.exists() else []) if name.endswith(".json")}
    return done.value.code, err, files


def records_since(e, cutoff):
    """What the pump's pages hold from ``cutoff`` on: one newest-first list, each with its id."""
    merged = history.merge(history.decode_page(page, e.pump.model) for page in e.pump.history.pages)
    out = [r for r in merged if r["timestamp"] >= cutoff.isoformat()]
    for rec in out:
        rec["id"] = base64.b64encode(bytes.fromhex(rec["_head"] + rec["_date"] + rec["_body"])).decode()
    return json.loads(json.dumps(out))


def schedule(pairs, value_keys, entries):
    """A pump schedule [(half-hours, value...)] as (offset minutes, values) and the file's."""
    return ([(start * 30,) + tuple(values) for start, *values in pairs],
            [(x["offset"],) + tuple(x[k] for k in value_keys) for x in entries])


# --- every file, the pump's values ---------------------------------------------------------

def test_every_file_has_the_shape_and_the_values_of_the_pump(emu, tmp_path, capsys):
    emu.pump.temp = dict(type="absolute", rate=1.25, end=emu.clock.now() + 25 * 60)
    emu.pump.settings["selected_pattern"] = 1                      # profile A is in use
    emu.pump.reservoir, emu.pump.battery_volts = 97.325, 1.29
    code, err, files = mm_openaps(emu.url, tmp_path, "--timezone", PARIS, capsys=capsys)
    assert code == 0, err
    assert sorted(files) == sorted(EVERY)
    assert sorted(os.listdir(tmp_path)) == sorted(EVERY)            # no temporary file left behind
    assert len(err.strip().splitlines()) == 1 and "15 files written" in err

    clock = datetime.datetime.fromisoformat(files["clock.json"])
    assert clock.tzinfo is None and abs((emu.pump.now() - clock).total_seconds()) < 5
    assert files["clock-zoned.json"] == clock.replace(tzinfo=tz.gettz(PARIS)).isoformat()
    assert files["clock-zoned.json"].endswith("+01:00")
    assert files["model.json"] == "523"
    assert files["status.json"] == {"status": "normal", "bolusing": False, "suspended": False}
    assert files["reservoir.json"] == 97.325
    assert files["battery.json"] == {"status": "normal", "voltage": 1.29}
    assert files["temp_basal.json"] == {"temp": "absolute", "rate": 1.25, "duration": 25}

    settings = files["settings.json"]
    assert settings["maxBasal"] == emu.pump.settings["max_basal"]
    assert settings["maxBolus"] == emu.pump.settings["max_bolus"]
    assert settings["insulin_action_curve"] == emu.pump.settings["insulin_action_hours"]
    assert settings["selected_pattern"] == 1
    # schedules: decocare 0.0.31's shapes, offset in minutes after midnight
    want, got = schedule(emu.pump.carb_ratios, ["ratio"], files["carb_ratios.json"]["schedule"])
    assert got == want and files["carb_ratios.json"]["units"] == "grams" and len(want) == 2
    want, got = schedule(emu.pump.sensitivities, ["sensitivity"],
                         files["insulin_sensitivities.json"]["sensitivities"])
    assert got == want and files["insulin_sensitivities.json"]["units"] == "mg/dL"
    want, got = schedule(emu.pump.bg_targets, ["low", "high"], files["bg_targets.json"]["targets"])
    assert got == want and files["bg_targets.json"]["units"] == "mg/dL" and "raw" in files["bg_targets.json"]
    for entry in files["carb_ratios.json"]["schedule"]:
        assert entry["start"] == "%02d:%02d:00" % divmod(entry["offset"], 60) and "x" in entry and "i" in entry
    # the SELECTED basal pattern (A), and only that one was read
    assert [(b["minutes"], b["rate"]) for b in files["basal_profile.json"]] == \
        [(start * 30, rate) for start, rate in emu.pump.profiles[1]]
    assert all(b["offset"] == b["minutes"] and "i" in b and "start" in b for b in files["basal_profile.json"])
    assert "ReadProfile_A512" in ops(emu) and "ReadProfile_STD512" not in ops(emu)

    # history: the last 24 h of the pump clock, newest first, every record with its id
    expected = records_since(emu, clock - datetime.timedelta(hours=24))
    assert expected and files["pumphistory.json"] == expected
    zoned = files["pumphistory-zoned.json"]
    assert [dict(r, timestamp=r["timestamp"][:19]) for r in zoned] == expected
    assert all(r["timestamp"].endswith("+01:00") for r in zoned)
    assert any(r["_type"] == "Bolus" for r in expected)

    # glucose: the sensor values the emulator generated for the last 24 h, newest first
    values = [(t, v) for t, v in generate.glucose_values(START) if t >= clock - datetime.timedelta(hours=24)]
    glucose = files["glucose.json"]
    assert [(datetime.datetime.fromisoformat(g["display_time"]).replace(tzinfo=None), g["sgv"])
            for g in glucose] == values[::-1]
    assert len(glucose) == 24 * 12 + 1
    for g in glucose:
        when = datetime.datetime.fromisoformat(g["dateString"])
        assert g["glucose"] == g["sgv"] and g["type"] == "sgv" and g["name"] == "GlucoseSensorData"
        assert g["date"] == int(when.timestamp() * 1000) and g["display_time"] == g["dateString"]
        assert when.utcoffset() == datetime.timedelta(hours=1)
    assert ops(emu).count("ReadPumpModel") == 1 and ops(emu).count("PowerControl") == 0


def test_the_bin_script_in_another_process(tmp_path):
    """The stable interface: bin/mm-openaps.py --port P --serial S --out DIR --only --hours, on a
    pty emulator served by another process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    help_ = subprocess.run([sys.executable, str(ROOT / "bin" / "mm-openaps.py"), "--help"], capture_output=True,
                           text=True, env=env, timeout=60)
    assert help_.returncode == 0 and "--out" in help_.stdout and "--only" in help_.stdout
    emu = subprocess.Popen([sys.executable, "-m", "decocare.emulator", "--timing", "fast", "--model", "523",
                            "--serial", SERIAL, "--link", str(tmp_path / "carelink")],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        port = emu.stdout.readline().strip()
        done = subprocess.run([sys.executable, str(ROOT / "bin" / "mm-openaps.py"), "--port", port,
                               "--serial", SERIAL, "--out", str(tmp_path / "out"), "--only", "status,history",
                               "--hours", "6"], capture_output=True, text=True, env=env, timeout=120)
    finally:
        emu.terminate()
        emu.wait(30)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path / "out")) == sorted(STATUS + HISTORY) and done.stdout == ""
    clock = datetime.datetime.fromisoformat(json.loads((tmp_path / "out" / "clock.json").read_text()))
    stamps = [r["timestamp"] for r in json.loads((tmp_path / "out" / "pumphistory.json").read_text())]
    assert all(s >= (clock - datetime.timedelta(hours=6)).isoformat() for s in stamps)


# --- --only, --hours, --since-id, --timezone -----------------------------------------------

@pytest.mark.parametrize("only,files,reads", [
    ("status", STATUS, {"ReadRTC", "ReadPumpStatus", "ReadRemainingInsulin", "ReadBatteryStatus", "ReadBasalTemp"}),
    ("profile", PROFILE, {"ReadSettings", "ReadBGTargets515", "ReadInsulinSensitivities", "ReadCarbRatios",
                          "ReadProfile_STD512"}),
    ("history", HISTORY, {"ReadRTC", "ReadHistoryData"}),
    ("glucose", ["glucose.json"], {"ReadRTC", "ReadCurGlucosePageNumber", "ReadGlucoseHistory"}),
    ("history,status", STATUS + HISTORY, None),
])
def test_only_reads_and_writes_just_those_groups(emu, tmp_path, capsys, only, files, reads):
    code, err, got = mm_openaps(emu.url, tmp_path, "--only", only, capsys=capsys)
    assert code == 0, err
    assert sorted(got) == sorted(files)
    if reads is not None:
        assert set(ops(emu)) - {"ReadPumpModel"} == reads


def test_hours_sets_the_history_and_glucose_window(emu, tmp_path, capsys):
    code, _, short = mm_openaps(emu.url, tmp_path / "short", "--only", "history,glucose", "--hours", "3",
                                capsys=capsys)
    assert code == 0 and ops(emu, "ReadHistoryData") == ["ReadHistoryData"]
    clock = emu.pump.now()
    assert short["pumphistory.json"] == records_since(emu, clock - datetime.timedelta(hours=3))
    assert len(short["glucose.json"]) == 3 * 12 + 1
    emu.ledger.clear()
    code, _, long_ = mm_openaps(emu.url, tmp_path / "long", "--only", "history", "--hours", "240", capsys=capsys)
    expected = records_since(emu, clock - datetime.timedelta(hours=240))
    assert code == 0 and [r["id"] for r in long_["pumphistory.json"]] == [r["id"] for r in expected]
    assert len(expected) > 3 * len(short["pumphistory.json"])
    assert ops(emu, "ReadHistoryData") == ["ReadHistoryData"] * 3      # 10 days: pages 0-2
    stamps = [r["timestamp"] for r in long_["pumphistory.json"]]
    assert stamps == sorted(stamps, reverse=True)
    code, err, _ = mm_openaps(emu.url, tmp_path / "bad", "--hours", "0", capsys=capsys)
    assert code == EXIT_USAGE and "hours" in err


def test_since_id_reads_one_page_when_nothing_is_new(emu, tmp_path, capsys):
    code, _, first = mm_openaps(emu.url, tmp_path, "--only", "history", capsys=capsys)
    newest = first["pumphistory.json"][0]["id"]
    emu.ledger.clear()
    code, err, again = mm_openaps(emu.url, tmp_path, "--only", "history", "--since-id", newest, capsys=capsys)
    assert code == 0 and again["pumphistory.json"] == [] == again["pumphistory-zoned.json"]
    assert ops(emu, "ReadHistoryData") == ["ReadHistoryData"] and "ReadCurPageNumber" not in ops(emu)
    assert "stopped at since-id" in err
    # an id further back: exactly the records newer than it
    older = first["pumphistory.json"][3]["id"]
    code, _, some = mm_openaps(emu.url, tmp_path, "--only", "history", "--since-id", older, capsys=capsys)
    assert code == 0 and some["pumphistory.json"] == first["pumphistory.json"][:3]


@pytest.mark.parametrize("zone,offset", [("America/New_York", "-05:00"), ("Asia/Kolkata", "+05:30")])
def test_timezone_gives_the_zone_offset_to_every_zoned_time(emu, tmp_path, capsys, zone, offset):
    code, _, files = mm_openaps(emu.url, tmp_path, "--timezone", zone, "--only", "status,history,glucose",
                                capsys=capsys)
    assert code == 0
    assert files["clock-zoned.json"] == files["clock.json"] + offset
    assert [r["timestamp"] for r in files["pumphistory-zoned.json"]] == \
        [r["timestamp"] + offset for r in files["pumphistory.json"]]
    newest = files["glucose.json"][0]
    assert newest["dateString"].endswith(offset)
    naive = datetime.datetime.fromisoformat(newest["dateString"][:19])
    assert newest["date"] == int(naive.replace(tzinfo=tz.gettz(zone)).timestamp() * 1000)


def test_the_host_zone_by_default(emu, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        code, _, files = mm_openaps(emu.url, tmp_path, "--only", "status", capsys=capsys)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert code == 0 and files["clock-zoned.json"] == files["clock.json"] + "+05:30"


def test_rezone_reaches_nested_records_and_keeps_offsets_and_other_keys():
    paris = tz.gettz(PARIS)
    record = {"_type": "Bolus", "timestamp": "2026-07-01T12:00:00", "valid_date": "2026-06-30",
              "appended": [{"_type": "X", "timestamp": "2026-07-01T11:59:00", "created_at": "2026-07-01T11:00:00"}],
              "dateString": "2026-07-01T12:00:00-04:00", "start_at": "not a time"}
    out = openaps.rezone([record], paris)[0]
    assert out["timestamp"] == "2026-07-01T12:00:00+02:00"          # summer time in Paris
    assert out["appended"][0] == {"_type": "X", "timestamp": "2026-07-01T11:59:00+02:00",
                                  "created_at": "2026-07-01T11:00:00+02:00"}
    assert out["dateString"] == "2026-07-01T12:00:00-04:00" and out["start_at"] == "not a time"
    assert out["valid_date"] == "2026-06-30" and record["timestamp"] == "2026-07-01T12:00:00"


def test_usage_errors_touch_nothing(emu, tmp_path, capsys):
    (tmp_path / "clock.json").write_text('"old"')
    for extra, words in ((["--only", "status,bogus"], "--only"), (["--timezone", "Nowhere/Atlantis"], "time zone"),
                         (["--hours", "x"], "hours")):
        code, err, files = mm_openaps(emu.url, tmp_path, *extra, capsys=capsys)
        assert code == EXIT_USAGE and words in err and len(err.strip().splitlines()) == 1
        assert files == {"clock.json": "old"}
    assert emu.ledger == []


def test_an_unwritable_out_is_refused_before_the_pump_is_touched(emu, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as done:
        registry.run(openaps.main, ["--port", emu.url, "--serial", SERIAL, "--out", str(tmp_path / "file" / "sub")],
                     prog="mm-openaps.py")
    err = capsys.readouterr().err
    assert done.value.code == EXIT_USAGE and "cannot write there" in err and "nothing was sent" in err
    assert emu.ledger == []


# --- atomic writes, failed reads and the stale-file rule ---------------------------------------

def test_files_are_replaced_atomically(emu, tmp_path, capsys, monkeypatch):
    code, _, _ = mm_openaps(emu.url, tmp_path, "--only", "status", capsys=capsys)
    before = {name: os.stat(tmp_path / name).st_ino for name in STATUS}
    renames = []
    real = os.replace
    monkeypatch.setattr(openaps.os, "replace", lambda a, b: (renames.append((a, b)), real(a, b)))
    code, _, files = mm_openaps(emu.url, tmp_path, "--only", "status", capsys=capsys)
    assert code == 0 and sorted(os.listdir(tmp_path)) == sorted(STATUS)
    assert [os.path.basename(b) for _, b in renames] == STATUS
    assert all(os.path.dirname(a) == str(tmp_path) and os.path.basename(a).startswith(".") for a, _ in renames)
    assert all(os.stat(tmp_path / name).st_ino != before[name] for name in STATUS)   # new files, renamed over

    # a write that fails leaves the old file whole and no temporary file
    def broken(a, b):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(openaps.os, "replace", broken)
    code, err, files = mm_openaps(emu.url, tmp_path, "--only", "status", capsys=capsys)
    assert code == 1 and "No space left on device" in err
    assert sorted(os.listdir(tmp_path)) == []        # could not be written fresh: the old ones are removed


def nak(e, name):
    """Make the emulated pump refuse read ``name`` (NAK 0x08) from now on."""
    real = e.pump._read
    e.pump._read = lambda n, params: NAK_REFUSED if n == name else real(n, params)


def test_a_refused_read_names_its_file_removes_the_old_one_and_the_rest_is_written(emu, tmp_path, capsys):
    for name in EVERY:
        (tmp_path / name).write_text('"stale"')
    nak(emu, "ReadRemainingInsulin")
    code, err, files = mm_openaps(emu.url, tmp_path, "--only", "status,profile", capsys=capsys)
    assert code == EXIT_REFUSED
    assert "reservoir.json" not in files and sorted(files) == sorted(set(EVERY) - {"reservoir.json"})
    assert {name for name, value in files.items() if value == "stale"} == set(HISTORY + ["glucose.json"])
    line, = [l for l in err.splitlines() if "not written" in l]
    assert "reservoir.json" in line and "refused ReadRemainingInsulin" in line and "old file was removed" in line


def test_settings_refused_takes_the_basal_profile_with_it(emu, tmp_path, capsys):
    nak(emu, "ReadSettings")
    code, err, files = mm_openaps(emu.url, tmp_path, "--only", "profile", capsys=capsys)
    assert code == EXIT_REFUSED and sorted(files) == ["bg_targets.json", "carb_ratios.json",
                                                      "insulin_sensitivities.json"]
    assert "settings.json" in err and "basal_profile.json" in err and "ReadProfile_STD512" not in ops(emu)


def test_a_pump_that_stops_answering_ends_the_session(emu, tmp_path, capsys):
    """The pump answers the status reads, then goes out of range at the first history page: every
    file not read yet is named and its old version removed; exit 5."""
    for name in EVERY:
        (tmp_path / name).write_text('"stale"')
    real = emu.stick._exchange

    def vanish(tx, now):
        if tx.opcode == 0x80:                                   # ReadHistoryData
            emu.faults.flags.add("out_of_range")
        return real(tx, now)
    emu.stick._exchange = vanish
    code, err, files = mm_openaps(emu.url, tmp_path, capsys=capsys)
    assert code == EXIT_NO_RESPONSE
    assert sorted(files) == sorted(STATUS)
    lines = [l for l in err.splitlines() if "not written" in l]
    assert len(lines) == 1
    for name in HISTORY + PROFILE + ["glucose.json"]:
        assert name in lines[0] and not (tmp_path / name).exists()
    assert "old files were removed" in lines[0]
    assert "ReadSettings" not in ops(emu)                    # nothing more was asked


def test_a_closed_port_names_every_file_and_removes_the_old_ones(tmp_path, capsys):
    e = Emulator(model="523", serial=SERIAL, timing="fast")
    url = e.url
    e.close()
    for name in ["clock.json", "pumphistory.json", "glucose.json", "notes.txt"]:
        (tmp_path / name).write_text('"stale"')
    code, err, files = mm_openaps(url, tmp_path, capsys=capsys)
    assert code in (EXIT_PORT, EXIT_NO_RESPONSE), err
    line, = [l for l in err.splitlines() if "not written" in l]
    for name in STATUS + HISTORY + PROFILE:
        assert name in line
    # glucose.json is left alone: without an answer the model (CGM or not) is unknown
    assert sorted(os.listdir(tmp_path)) == ["glucose.json", "notes.txt"]
    code, err, files = mm_openaps(url, tmp_path, "--model", "523", capsys=capsys)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]      # --model 523: a CGM pump's glucose.json goes


def test_a_partial_history_page_is_not_written(tmp_path, capsys):
    base = Emulator(model="523", timing="fast", start=START).pump.history.pages
    broken = bytearray(base[0])
    start = history.decode_page(base[0], "523").entries[2]["offset"]
    broken[start] = 0xEE                                          # an opcode no pump writes
    broken[1022:] = crc16(bytes(broken[:1022])).to_bytes(2, "big")
    pages = tmp_path / "pages"
    pages.mkdir()
    for n, page in enumerate([bytes(broken)] + base[1:]):
        (pages / ("ReadHistoryData-page-%d.data" % n)).write_bytes(page)
    out = tmp_path / "out"
    out.mkdir()
    (out / "pumphistory.json").write_text("[]")
    with Emulator(model="523", timing="fast", pages=str(pages)) as e:
        code, err, files = mm_openaps(e.url, out, "--only", "status,history", capsys=capsys)
    assert code == EXIT_PARTIAL and sorted(files) == sorted(STATUS)
    assert "pumphistory.json, pumphistory-zoned.json" in err and "decoded only in part" in err


@pytest.mark.parametrize("model", ["512", "515"])
def test_files_a_model_does_not_have(tmp_path, capsys, model):
    (tmp_path / "glucose.json").write_text('"from a dexcom"')
    with Emulator(model=model, serial=SERIAL, timing="fast") as e:
        code, err, files = mm_openaps(e.url, tmp_path, capsys=capsys)
        assert code == 0, err
        assert files["glucose.json"] == "from a dexcom" and "ReadGlucoseHistory" not in ops(e)
        assert ("status.json" in files) == (model != "512") and files["model.json"] == model
        assert "ReadCurGlucosePageNumber" not in ops(e)
        code, err, files = mm_openaps(e.url, tmp_path, "--only", "glucose", capsys=capsys)
        assert code == EXIT_REFUSED and "keeps no glucose history" in err
        assert files["glucose.json"] == "from a dexcom"


def test_an_interrupt_writes_and_removes_nothing(emu, tmp_path, capsys, monkeypatch):
    """Ctrl-C / SIGTERM during the session: exit 130, the previous run's files stay as they were."""
    for name in EVERY:
        (tmp_path / name).write_text('"previous run"')

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(openaps.latest, "recent", interrupted)
    code, err, files = mm_openaps(emu.url, tmp_path, capsys=capsys)
    assert code == 130 and "interrupted" in err
    assert files == {name: "previous run" for name in EVERY}

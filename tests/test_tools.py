"""The mm-* tools against the built-in emulator (in-process, fast timing): what they print, what
they send (the emulator's ledger of executed commands), and their error paths."""
import base64
import datetime
import json
import os
import pathlib
import subprocess
import sys

import pytest
import serial

from decocare import cgm, history, scan
from decocare.emulator import Emulator
from decocare.errors import EXIT_NO_RESPONSE, EXIT_PARTIAL, EXIT_PORT, EXIT_REFUSED, EXIT_USAGE
from decocare.lib import crc16
from decocare.pages import page_crc_ok
from decocare.tools import latest, pages, send_comm
from decocare.tools import registry

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERIAL = "208850"


@pytest.fixture
def emu():
    with Emulator(model="523", serial=SERIAL, timing="fast") as e:
        yield e


def run(main, argv, capsys):
    """(exit code, parsed JSON stdout or None, stderr) of a tool run in-process, as cli.run runs it."""
    with pytest.raises(SystemExit) as done:
        registry.run(main, argv, prog="tool")
    out = capsys.readouterr()
    return done.value.code, (json.loads(out.out) if out.out.strip() else None), out.err


def ops(e, name=None):
    return [x["op"] for x in e.ledger if name is None or x["op"] == name]


def page_records(e, n):
    return history.decode_page(e.pump.history.pages[n], "523").records


# --- mm-send-comm.py ----------------------------------------------------------------------------

def test_send_comm_by_name_and_opcode(emu, capsys, tmp_path):
    code, out, _ = run(send_comm.main, ["--port", emu.url, "--serial", SERIAL, "ReadRemainingInsulin"], capsys)
    assert code == 0 and out["command"] == "ReadRemainingInsulin" and out["opcode"] == "0x73"
    assert out["decoded"] == emu.pump.reservoir
    os.chdir(tmp_path)
    code, out, _ = run(send_comm.main, ["--port", emu.url, "--serial", SERIAL, "0x80", "--page", "1", "--save"],
                       capsys)
    saved = (tmp_path / "ReadHistoryData-page-1.data").read_bytes()
    assert code == 0 and out["command"] == "ReadHistoryData" and out["params"] == "01" and out["crc_ok"]
    assert saved == emu.pump.history.pages[1] and bytes.fromhex(out["reply"]) == saved


def test_send_comm_raw_params(emu, capsys, tmp_path):
    target = tmp_path / "p.data"
    code, out, _ = run(send_comm.main, ["--port", emu.url, "--serial", SERIAL, "ReadHistoryData",
                                        "--params", "02", "--save", str(target)], capsys)
    assert code == 0 and target.read_bytes() == emu.pump.history.pages[2]


@pytest.mark.parametrize("command", ["Bolus", "TempBasal", "SetSuspend", "KeypadPush", "SetRTC", "0x42", "0x4c"])
def test_send_comm_refuses_writes_and_sends_nothing_that_changes_the_pump(emu, capsys, command):
    code, out, err = run(send_comm.main, ["--port", emu.url, "--serial", SERIAL, command, "--params", "01"], capsys)
    assert code == EXIT_REFUSED and out is None
    assert "nothing was sent" in err and len(err.strip().splitlines()) == 1
    assert set(ops(emu)) <= {"ReadPumpModel"}     # the model is read to look an opcode up, nothing else


def test_send_comm_refuses_unknown_opcode_and_rejects_bad_input(emu, capsys):
    code, _, err = run(send_comm.main, ["--port", emu.url, "--serial", SERIAL, "0x01"], capsys)
    assert code == EXIT_REFUSED and "could change delivery" in err
    code, _, err = run(send_comm.main, ["--port", emu.url, "--serial", SERIAL, "ReadNothing"], capsys)
    assert code == EXIT_USAGE and "unknown pump command" in err
    code, _, err = run(send_comm.main, ["--port", emu.url, "--serial", SERIAL, "ReadRTC", "--params", "zz"], capsys)
    assert code == EXIT_USAGE and "not hex" in err
    assert ops(emu) == ["ReadPumpModel"]          # only the first one got as far as the pump


# --- mm-latest.py -------------------------------------------------------------------------------

def test_latest_state_and_cutoff_reads_only_the_pages_it_needs(emu, capsys):
    p0, p1 = page_records(emu, 0), page_records(emu, 1)
    now = emu.pump.now()
    # a window that ends inside page 1: page 0 whole, page 1 down to its third record
    cutoff = datetime.datetime.fromisoformat(p1[2]["timestamp"])
    minutes = int((now - cutoff).total_seconds() // 60)
    code, out, _ = run(latest.main, ["--port", emu.url, "--serial", SERIAL, str(minutes)], capsys)
    assert code == 0
    assert out["model"] == "523" and out["reservoir"] == emu.pump.reservoir
    assert out["temp_basal"]["duration"] == 0 and out["status"]["suspended"] is False
    assert set(out) >= {"clock", "settings", "battery", "status", "cutoff"}
    # daily totals are stamped when the pump wrote them (00:00 after the day they sum up), so
    # they sit in time order and the cutoff may stop at one like at any other record
    totals = [r for r in p0 + p1 if "valid_date" in r]
    assert totals and all(datetime.date.fromisoformat(r["valid_date"]) + datetime.timedelta(days=1)
                          == datetime.datetime.fromisoformat(r["timestamp"]).date() for r in totals)
    expected = [r for r in p0 + p1 if r["timestamp"] >= out["cutoff"]]
    assert [r["timestamp"] for r in out["history"]] == [r["timestamp"] for r in expected]
    assert out["pages_read"] == 2 and out["stopped_at"] == "cutoff"
    assert ops(emu, "ReadHistoryData") == ["ReadHistoryData"] * 2
    rec = out["history"][0]
    assert base64.b64decode(rec["id"]) == bytes.fromhex(rec["_head"] + rec["_date"] + rec["_body"])


def test_latest_since_id_reads_one_page_when_nothing_is_new(emu, capsys):
    newest = page_records(emu, 0)[0]
    rid = base64.b64encode(bytes.fromhex(newest["_head"] + newest["_date"] + newest["_body"])).decode()
    code, out, _ = run(latest.main, ["--port", emu.url, "--serial", SERIAL, "--since-id", rid, "100000"], capsys)
    assert code == 0 and out["history"] == [] and out["pages_read"] == 1 and out["stopped_at"] == "since-id"
    assert ops(emu, "ReadHistoryData") == ["ReadHistoryData"]
    assert "ReadCurPageNumber" not in ops(emu)    # page 0 was enough: the page count is not asked


def test_latest_since_id_on_an_older_page_returns_what_is_newer(emu, capsys):
    older = page_records(emu, 1)[3]
    rid = base64.b64encode(bytes.fromhex(older["_head"] + older["_date"] + older["_body"])).decode()
    code, out, _ = run(latest.main, ["--port", emu.url, "--serial", SERIAL, "--since-id", rid, "100000"], capsys)
    expected = page_records(emu, 0) + page_records(emu, 1)[:3]
    assert code == 0 and out["stopped_at"] == "since-id" and out["pages_read"] == 2
    assert [r["id"] for r in out["history"]] == [
        base64.b64encode(bytes.fromhex(r["_head"] + r["_date"] + r["_body"])).decode() for r in expected]


def test_latest_whole_history_ends_at_the_last_page(emu, capsys):
    code, out, _ = run(latest.main, ["--port", emu.url, "--serial", SERIAL, "10000000"], capsys)
    count = len(emu.pump.history.pages)
    assert code == 0 and out["stopped_at"] == "end of history" and out["pages_read"] == count
    assert len(out["history"]) == sum(len(page_records(emu, n)) for n in range(count))


# --- mm-pages.py, mm-history.py, mm-glucose.py -----------------------------------------------------

def assert_newest_first(records):
    """Every dated record is no newer than the one before it: oref0 drops any record that is."""
    stamps = [r["timestamp"] for r in records if "timestamp" in r]
    assert stamps == sorted(stamps, reverse=True)


def test_pages_and_history(emu, capsys, tmp_path):
    code, out, _ = run(pages.pages_main, ["--port", emu.url, "--serial", SERIAL, "0", "1", "--by-page",
                                          "--save", str(tmp_path)], capsys)
    assert code == 0 and [p["page"] for p in out] == [0, 1]
    assert all(p["crc_ok"] and p["complete"] for p in out)
    assert out[1]["records"] == json.loads(json.dumps(page_records(emu, 1)))
    assert (tmp_path / "ReadHistoryData-page-0.data").read_bytes() == emu.pump.history.pages[0]
    code, merged, _ = run(pages.pages_main, ["--port", emu.url, "--serial", SERIAL, "0", "1"], capsys)
    assert code == 0 and sorted(map(json.dumps, merged)) == sorted(
        json.dumps(r) for p in out for r in p["records"])
    assert_newest_first(merged)
    code, out, _ = run(pages.history_main, ["--port", emu.url, "--serial", SERIAL], capsys)
    every = [r for n in range(len(emu.pump.history.pages)) for r in page_records(emu, n)]
    assert code == 0 and sorted(r["timestamp"] for r in out) == sorted(r["timestamp"] for r in every)
    assert_newest_first(out)
    code, _, err = run(pages.pages_main, ["--port", emu.url, "--serial", SERIAL, "3", "1"], capsys)
    assert code == EXIT_USAGE and "FIRST <= LAST" in err


def test_history_is_one_time_ordered_list_across_pages(tmp_path, capsys):
    """A record written under an older clock on page 0 and a newer one on page 1 (clock set
    back between them): the joined list must still be newest first (oref0 reads it in order)."""
    late = [history.encode_record("Bolus", "523", "2026-01-02T10:00:00", amount=1.0, programmed=1.0)]
    early = [history.encode_record("TempBasal", "523", "2026-01-02T11:00:00", temp="absolute", rate=1.0),
             history.encode_record("TempBasalDuration", "523", "2026-01-02T11:00:00", **{"duration (min)": 30}),
             history.encode_record("ResultDailyTotal", "523", amount=20.0, valid_date="2026-01-01")]
    page1, = history.build_pages(early, "523")
    page0, = history.build_pages(late, "523")
    for n, page in enumerate((page0, page1)):
        (tmp_path / ("ReadHistoryData-page-%d.data" % n)).write_bytes(page)
    with Emulator(model="523", timing="fast", pages=str(tmp_path)) as e:
        code, out, _ = run(pages.history_main, ["--port", e.url, "--serial", SERIAL], capsys)
    assert code == 0
    assert [r["_type"] for r in out] == ["TempBasalDuration", "TempBasal", "Bolus", "ResultDailyTotal"]
    assert out[-1]["timestamp"] == "2026-01-02T00:00:00" and out[-1]["valid_date"] == "2026-01-01"


def test_pages_partial_page_prints_then_exits_3(tmp_path, capsys):
    good = Emulator(model="523", timing="fast").pump.history.pages
    broken = bytearray(good[0])
    start = history.decode_page(good[0], "523").entries[2]["offset"]
    broken[start] = 0xEE                                    # an opcode no pump writes
    broken[1022:] = crc16(bytes(broken[:1022])).to_bytes(2, "big")      # a valid CRC: only the record is bad
    for n, page in enumerate([bytes(broken)] + good[1:]):
        (tmp_path / ("ReadHistoryData-page-%d.data" % n)).write_bytes(page)
    with Emulator(model="523", timing="fast", pages=str(tmp_path)) as e:
        code, out, err = run(pages.pages_main, ["--port", e.url, "--serial", SERIAL, "0", "--by-page"], capsys)
    assert code == EXIT_PARTIAL and out[0]["complete"] is False and out[0]["problem"]
    assert len(out[0]["records"]) == 2 and "page 0 decoded only in part" in err


def test_glucose(tmp_path, capsys):
    base = Emulator(model="523", timing="fast").pump
    for n, page in enumerate(base.history.pages):
        (tmp_path / ("ReadHistoryData-page-%d.data" % n)).write_bytes(page)
    newest = base.now().replace(second=0)
    values = {6: [100, 110, 120], 7: [130, 140, 150, 160]}       # page 7 is the newest
    for n, sgvs in values.items():
        at = newest - datetime.timedelta(hours=7 - n)
        (tmp_path / ("ReadGlucoseHistory-page-%d.data" % n)).write_bytes(cgm.build_page(cgm.sgv_records(sgvs, at)))
    with Emulator(model="523", timing="fast", pages=str(tmp_path)) as e:
        code, out, _ = run(pages.glucose_main, ["--port", e.url, "--serial", SERIAL, "--save", str(tmp_path / "g")],
                           capsys)
        sgv = [r["sgv"] for r in out if r.get("name") == "GlucoseSensorData"]
        assert code == 0 and sgv == [160, 150, 140, 130, 120, 110, 100]
        assert page_crc_ok((tmp_path / "g" / "ReadGlucoseHistory-page-7.data").read_bytes())
        code, out, _ = run(pages.glucose_main, ["--port", e.url, "--serial", SERIAL, "--pages", "1"], capsys)
        assert code == 0 and [r["sgv"] for r in out if "sgv" in r] == [160, 150, 140, 130]
        assert ops(e, "ReadGlucoseHistory") == ["ReadGlucoseHistory"] * 3


# --- error paths every tool shares ------------------------------------------------------------------

TOOLS = [(send_comm.main, ["ReadRTC"]), (latest.main, []), (pages.pages_main, []),
         (pages.history_main, []), (pages.glucose_main, [])]


@pytest.mark.parametrize("main,extra", TOOLS)
def test_pump_silent_is_one_line_and_exit_5(main, extra, capsys):
    port = "emulator://?model=523&serial=%s&timing=fast&faults=out_of_range" % SERIAL
    code, out, err = run(main, ["--port", port, "--serial", SERIAL] + extra, capsys)
    assert code == EXIT_NO_RESPONSE and out is None
    assert len(err.strip().splitlines()) == 1 and "did not answer" in err


@pytest.mark.parametrize("main,extra", TOOLS)
def test_missing_port_and_bad_serial(main, extra, capsys, tmp_path):
    code, _, err = run(main, ["--port", str(tmp_path / "ttyUSB9"), "--serial", SERIAL] + extra, capsys)
    assert code == EXIT_PORT and len(err.strip().splitlines()) == 1 and "no such port" in err
    code, _, err = run(main, ["--port", "emulator://", "--serial", "20885"] + extra, capsys)
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1 and "six digits" in err


def test_busy_port(capsys, tmp_path):
    with Emulator(model="523", serial=SERIAL, timing="fast") as e:
        port = e.serve_pty(str(tmp_path / "carelink"))
        holder = serial.Serial(port, exclusive=True)
        try:
            code, _, err = run(latest.main, ["--port", port, "--serial", SERIAL], capsys)
        finally:
            holder.close()
    assert code == EXIT_PORT and "busy" in err


def test_no_port_given_and_no_stick(capsys, monkeypatch):
    monkeypatch.delenv("DECOCARE_PORT", raising=False)
    monkeypatch.setenv("DECOCARE_SYSFS", "/nonexistent")
    monkeypatch.setattr(scan, "STICK_GLOBS", ())
    code, _, err = run(latest.main, ["--serial", SERIAL], capsys)
    assert code == EXIT_PORT and "no CareLink stick found" in err


@pytest.mark.parametrize("script", ["mm-send-comm.py", "mm-latest.py", "mm-pages.py", "mm-history.py", "mm-glucose.py"])
def test_scripts_help(script):
    """The bin/ scripts run from a checkout and explain themselves."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, str(ROOT / "bin" / script), "--help"], capture_output=True,
                         text=True, env=env, timeout=30)
    assert res.returncode == 0 and script in res.stdout and "--port" in res.stdout and "--serial" in res.stdout

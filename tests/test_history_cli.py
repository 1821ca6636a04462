"""The command lines as users run them: output shape, one-line errors, exit codes."""
import json
import pathlib
import subprocess
import sys

import pytest

from decocare import cgm, history

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*args):
    proc = subprocess.run([sys.executable] + [str(a) for a in args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pages")
    enc = history.encode_record
    made = [enc("BolusWizard", "523", "2015-03-01T11:59:58", bg=150, carb_input=40, bolus_estimate=3.0),
            enc("UnabsorbedInsulinBolus", "523", data=[{"amount": 1.5, "age": 60}]),
            enc("Bolus", "523", "2015-03-01T12:00:05", programmed=1.0, amount=1.0, duration=60),
            enc("Bolus", "523", "2015-03-01T12:00:00", programmed=2.0, amount=2.0, unabsorbed=1.5)]
    (good,) = history.build_pages(made, "523")
    paths = {"good": tmp / "good.data", "short": tmp / "short.data", "bad": tmp / "bad.data",
             "notapage": tmp / "notapage.data", "glucose": tmp / "glucose.data",
             "text": tmp / "notes.txt"}
    paths["good"].write_bytes(good)
    paths["short"].write_bytes(good[:45])    # 3 records + 5 bytes of the 4th
    paths["bad"].write_bytes(good[:1023] + bytes([good[1023] ^ 1]))
    paths["notapage"].write_bytes(bytes(1500))
    paths["text"].write_bytes(b"pump notes: 2.5 U at lunch\n")     # page-sized or not, no record
    paths["glucose"].write_bytes(cgm.build_page(cgm.sgv_records([100, 110, 120], "2016-01-01T10:00:00")))
    return paths


def test_json_is_one_list_newest_first(pages):
    code, out, err = run("list_history.py", "--json", "--model", "523", pages["good"])
    assert code == 0 and err == ""
    recs = json.loads(out)
    assert [(r["_type"], r["timestamp"]) for r in recs] == [
        ("Bolus", "2015-03-01T12:00:05"), ("Bolus", "2015-03-01T12:00:00"),
        ("BolusWizard", "2015-03-01T11:59:58")]
    assert recs[0]["appended"][0]["_type"] == "UnabsorbedInsulinBolus"   # next record written
    code, out, _ = run("list_history.py", "--json", "--page-order", "--model", "523", pages["good"])
    assert [r["_type"] for r in json.loads(out)] == ["BolusWizard", "Bolus", "Bolus"]


def test_summary_ends_with_the_coverage_line(pages):
    code, out, _ = run("list_history.py", "--summary", "--model", "523", pages["good"], pages["short"])
    assert code == 3
    assert out.splitlines()[-1] == "coverage: 7 records, 1 unknown, 5 unaccounted bytes, 1/2 pages complete"
    code, out, _ = run("list_history.py", "--summary", "--lenient", "--model", "523", pages["good"])
    assert code == 0 and out.splitlines()[-1].endswith("1/1 pages complete")


@pytest.mark.parametrize("args, code, needle", [
    (("--json", "--model", "523", "/no/such/page.data"), 2, "no such file"),
    (("--json", "--model", "999", "good"), 2, "unknown pump model"),
    (("--json", "--model", "523", "notapage"), 2, "not a history page"),
    (("--json", "--model", "523", "text"), 2, "not a history page"),
    (("--json", "--model", "523", "short"), 3, "truncated"),
    (("--json", "--model", "523", "bad"), 3, "CRC16 does not match"),
])
def test_errors_are_one_line_with_an_exit_code(pages, args, code, needle):
    args = [pages.get(a, a) for a in args]
    got, out, err = run("list_history.py", *args)
    assert got == code and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err


def test_lenient_decodes_a_truncated_page(pages):
    code, out, _ = run("list_history.py", "--json", "--lenient", "--model", "523", pages["short"])
    assert code == 0 and [r["_type"] for r in json.loads(out)] == ["Bolus", "BolusWizard"]


def test_markdown_lists_bytes_and_fields(pages):
    code, out, _ = run("list_history.py", "--model", "523", pages["good"])
    assert code == 0
    assert "## Bolus 2015-03-01T12:00:05 head[8], body[0] op[0x01]" in out
    assert "0x01 0x00 0x28 0x00 0x28" in out and '"duration": 60' in out


def test_glucose_pages_through_list_history(pages):
    code, out, _ = run("list_history.py", "--glucose", "--json", pages["glucose"])
    sgv = [(r["sgv"], r["date"]) for r in json.loads(out) if r["name"] == "GlucoseSensorData"]
    assert code == 0 and sgv == [(120, "2016-01-01T10:00:00"), (110, "2016-01-01T09:55:00"),
                                 (100, "2016-01-01T09:50:00")]
    code, out, _ = run("list_history.py", "--glucose", pages["glucose"])
    assert code == 0 and "## SensorTimestamp 2016-01-01T10:00:00" in out and '"sgv": 120' in out


def test_other_tools(pages):
    code, out, _ = run("list_opcodes.py")
    assert code == 0 and "| 0x5C | UnabsorbedInsulinBolus | b1 |" in out
    code, out, _ = run("list_dates.py", "--model", "523", pages["good"])
    assert code == 0 and "2015-03-01T12:00:05  Bolus" in out and "no date              Unabsorbed" in out
    code, out, _ = run("bin/mm-decode-history-page.py", "--model", "523", pages["good"])
    assert code == 0 and len(json.loads(out)) == 3
    code, _, err = run("bin/mm-decode-history-page.py", "--model", "523", pages["notapage"])
    assert code == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("tool", ["list_history.py", "list_opcodes.py", "list_dates.py",
                                  "bin/mm-decode-history-page.py"])
def test_help(tool):
    code, out, _ = run(tool, "--help")
    assert code == 0 and "usage:" in out

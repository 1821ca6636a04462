"""mm-export.py --format carelink-csv: what CareLink's own export holds for the same records.

* the real pairs (../shared/fixtures/carelink/pairs.json, a CareLink CSV export and the raw pages
  of the same pump): every vendor row of a counted type inside the pair's windows must have a row
  of ours with the same Raw-Type at the same second, Raw-Values equal key by key (except CareLink's
  database ids, ``*_DATUM``) and the same human columns -- measured by
  benchmarks/carelink_agreement.py, >= 99 % over the primary pairs, remaining gaps only of the
  explained categories;
* records the tests build themselves (``history.encode_record`` / ``build_pages``): specific rows;
* the command line end to end.
"""
import calendar
import csv
import datetime
import importlib.util
import io
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import SHARED, shared_path
from decocare import history
from decocare.exports import carelink_csv

ROOT = pathlib.Path(__file__).resolve().parent.parent
enc = history.encode_record


def _benchmark():
    spec = importlib.util.spec_from_file_location("carelink_agreement",
                                                  str(ROOT / "benchmarks" / "carelink_agreement.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --------------------------------------------------------------------------------------------
# the real exports


@pytest.fixture(scope="module")
def agreement():
    shared_path("fixtures", "carelink", "pairs.json")
    shared_path("tools", "vendor_check.py")
    bench = _benchmark()
    return bench, bench.measure(SHARED)


def test_real_exports_are_reproduced(agreement):
    bench, results = agreement
    assert len(results) >= 10                       # every primary pair ran
    n = sum(res["n"] for _, res in results)
    m = sum(res["m"] for _, res in results)
    for pair, res in results:
        assert res["n"] > 0, pair["id"]
    gaps = {}
    for _, res in results:
        for cat, count in res["gaps"].items():
            gaps[cat] = gaps.get(cat, 0) + count
    assert n > 10000 and m / n >= 0.99, (m, n, gaps)
    unexplained = {cat: count for cat, count in gaps.items() if cat not in bench.EXPLAINED}
    assert not unexplained, unexplained


def test_our_csv_reads_with_the_vendor_parser(agreement):
    """vendor_check's own reader takes our file: header block, column line, Raw-Values pairs."""
    bench, _ = agreement
    vc, _ = bench.tools(SHARED)
    records = history.merge([history.decode_page(p, "523") for p in _dual_wave_pages()])
    out = io.StringIO()
    carelink_csv.write(records, out, "523", serial="123456")
    meta, events = bench._read(vc, text=out.getvalue())
    assert meta["pumps"] == [{"model": "Paradigm Revel - 523", "serial": "123456"}]
    assert meta["declared_records"] == len(events) == 3
    assert [e["type"] for e in events] == ["BolusNormal", "BolusSquare", "BolusNormal"]


def test_column_line_is_the_vendors(agreement):
    bench, _ = agreement
    vc, _ = bench.tools(SHARED)
    tree = SHARED / "fixtures" / "carelink" / "tree"
    csv_path = tree / "analysis" / "sarak" / "CareLink-Export-1378424556878.csv"
    if not csv_path.exists():
        pytest.skip("export %s not found" % csv_path)
    rows = list(csv.reader(io.StringIO(csv_path.read_text(encoding="latin-1"))))
    header = [r for r in rows if "Raw-Type" in r][0]
    assert tuple(c.strip() for c in header) == carelink_csv.COLUMNS


# --------------------------------------------------------------------------------------------
# records built here


def _export(made, model="523", serial=None):
    pages = history.build_pages(made, model)
    records = history.merge([history.decode_page(p, model) for p in pages])
    out = io.StringIO()
    carelink_csv.write(records, out, model, serial=serial)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Index,"))
    table = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
    return lines[:start], table


def _values(row):
    return dict(kv.split("=", 1) for kv in row["Raw-Values"].split(", ")) if row["Raw-Values"] else {}


def _set_bits(raw, offset, value):
    """Bits 5-7 of byte ``offset`` of an encoded record (where the pump keeps flags)."""
    raw = bytearray(raw)
    raw[offset] = (raw[offset] & 0x1F) | (value << 5)
    return bytes(raw)


def _dual_wave_pages():
    # x23 bolus: date at byte 8; t2 (hour byte) bits 5-7 = 4 normal part / 5 square part of a
    # dual wave, 2 a plain normal bolus
    normal = _set_bits(enc("Bolus", "523", "2015-03-01T12:00:00", programmed=1.0, amount=1.0), 10, 4)
    square = _set_bits(enc("Bolus", "523", "2015-03-01T12:00:00", programmed=2.5, amount=2.5,
                           duration=90), 10, 5)
    plain = _set_bits(enc("Bolus", "523", "2015-03-01T13:00:00", programmed=0.5, amount=0.5), 10, 2)
    return history.build_pages([normal, square, plain], "523")


def test_dual_wave_gives_a_normal_and_a_square_row():
    records = history.merge([history.decode_page(p, "523") for p in _dual_wave_pages()])
    out = io.StringIO()
    carelink_csv.write(records, out, "523")
    table = list(csv.DictReader(io.StringIO(out.getvalue().split("\n", 9)[9])))
    first, second, third = table
    assert {first["Raw-Type"], second["Raw-Type"]} == {"BolusNormal", "BolusSquare"}
    sq = first if first["Raw-Type"] == "BolusSquare" else second
    nm = second if sq is first else first
    assert _values(sq)["DURATION"] == str(90 * 60 * 1000)
    assert _values(sq)["IS_DUAL_COMPONENT"] == _values(nm)["IS_DUAL_COMPONENT"] == "true"
    assert (sq["Bolus Type"], nm["Bolus Type"]) == ("Dual/Square", "Dual/Normal")
    assert sq["Programmed Bolus Duration (hh:mm:ss)"] == "01:30:00"
    assert sq["Bolus Volume Delivered (U)"] == "2.5" and nm["Bolus Volume Delivered (U)"] == "1.0"
    assert third["Raw-Type"] == "BolusNormal" and _values(third)["IS_DUAL_COMPONENT"] == "false"
    assert third["Bolus Type"] == "Normal" and _values(third)["AMOUNT"] == "0.5"


def test_wizard_and_its_unabsorbed_insulin_list():
    made = [enc("BolusWizard", "523", "2015-03-01T11:59:58", bg=150, carb_input=40, carb_ratio=10,
                sensitivity=40, bg_target_low=90, bg_target_high=120, bolus_estimate=3.0,
                food_estimate=4.0, correction_estimate=0.75, unabsorbed_insulin_total=1.75),
            enc("UnabsorbedInsulinBolus", "523", data=[{"amount": 1.5, "age": 60},
                                                       {"amount": 0.25, "age": 300}]),
            enc("Bolus", "523", "2015-03-01T12:00:00", programmed=3.0, amount=3.0, unabsorbed=1.75)]
    _, table = _export(made)
    wizard = [r for r in table if r["Raw-Type"] == "BolusWizardBolusEstimate"]
    entries = [r for r in table if r["Raw-Type"] == "UnabsorbedInsulin"]
    assert len(wizard) == 1 and len(entries) == 2
    w = _values(wizard[0])
    assert (w["BG_INPUT"], w["CARB_INPUT"], w["CARB_RATIO"], w["BOLUS_ESTIMATE"]) == ("150", "40", "10", "3")
    assert w["UNABSORBED_INSULIN_COUNT"] == "2" and w["CORRECTION_ESTIMATE"] == "0.75"
    assert wizard[0]["BWZ Estimate (U)"] == "3.0" and wizard[0]["BWZ Active Insulin (U)"] == "1.75"
    for n, (row, amount, age) in enumerate(zip(entries, ("1.5", "0.25"), ("60", "300"))):
        assert row["Timestamp"] == wizard[0]["Timestamp"] == "3/1/15 11:59:58"   # the wizard's time
        v = _values(row)
        assert (v["INDEX"], v["AMOUNT"], v["RECORD_AGE"]) == (str(n), amount, age)
        assert "BOLUS_ESTIMATE_DATUM" not in v        # a CareLink database id: not invented


def test_temp_basal_pairs_with_its_duration():
    made = [enc("TempBasal", "522", "2015-04-14T08:00:00", temp="percent", rate=80),
            enc("TempBasalDuration", "522", "2015-04-14T08:00:00", **{"duration (min)": 90}),
            enc("TempBasal", "522", "2015-04-14T10:00:00", temp="absolute", rate=0.65),
            enc("TempBasalDuration", "522", "2015-04-14T10:00:00", **{"duration (min)": 30})]
    _, table = _export(made, "522")
    assert [r["Raw-Type"] for r in table] == ["ChangeTempBasalPercent", "ChangeTempBasal"]
    pct, rate = table
    assert _values(pct) == {"PERCENT_OF_RATE": "80", "DURATION": "5400000", "ACTION_REQUESTOR": "pump"}
    assert (pct["Temp Basal Amount (U/h)"], pct["Temp Basal Type"], pct["Temp Basal Duration (hh:mm:ss)"]) \
        == ("80", "Percent", "01:30:00")
    assert _values(rate)["RATE"] == "0.65" and _values(rate)["DURATION"] == "1800000"
    assert rate["Temp Basal Amount (U/h)"] == "0.65" and rate["Temp Basal Type"] == "Rate"
    # the duration written first, or alone
    made = [enc("TempBasalDuration", "522", "2015-04-14T08:00:00", **{"duration (min)": 60}),
            enc("TempBasal", "522", "2015-04-14T08:00:00", temp="percent", rate=50),
            enc("TempBasalDuration", "522", "2015-04-14T09:00:00", **{"duration (min)": 0})]
    _, table = _export(made, "522")
    assert [(r["Raw-Type"], _values(r)["DURATION"]) for r in table] == [
        ("ChangeTempBasalPercent", "3600000"), ("ChangeTempBasalNoRate", "0")]


def test_time_change_carries_the_new_clock():
    made = [enc("ChangeTime", "522", "2015-04-14T08:00:00"),
            enc("NewTimeSet", "522", "2015-04-14T09:30:00")]
    head, table = _export(made, "522", serial="578398")
    assert [r["Raw-Type"] for r in table] == ["ChangeTime"]
    new_time = calendar.timegm(datetime.datetime(2015, 4, 14, 9, 30).timetuple()) * 1000
    assert _values(table[0])["NEW_TIME"] == str(new_time)
    assert table[0]["New Device Time"] == "4/14/15 09:30:00" and table[0]["Time"] == "08:00:00"
    assert "Pump:,Paradigm 522,#578398,Time Changes: 1" in head


def test_daily_totals_are_dated_the_day_summed():
    made = [enc("ResultDailyTotal", "522", valid_date="2015-04-13", amount=27.65),
            enc("ResultDailyTotal", "522", valid_date="2015-04-14", amount=0)]
    _, table = _export(made, "522")
    assert len(table) == 1                               # a 0 U total is not exported
    (row,) = table
    assert (row["Raw-Type"], row["Date"], row["Time"]) == ("ResultDailyTotal", "4/13/15", "00:00:00")
    assert _values(row) == {"AMOUNT": "27.65", "CONCENTRATION": "null"}
    assert row["Daily Insulin Total (U)"] == "27.6"       # 3 significant digits, half even


def test_suspend_resume_basal_start_and_prime():
    made = [enc("PumpSuspend", "522", "2015-04-14T08:00:00"),
            enc("PumpResume", "522", "2015-04-14T08:10:00"),
            enc("BasalProfileStart", "522", "2015-04-14T08:30:00", offset=30600000, rate=0.85,
                profile_index=3),
            enc("Prime", "522", "2015-04-14T09:00:00", amount=0.5, fixed=0.5)]
    _, table = _export(made, "522")
    susp, resume, basal, prime = table
    assert _values(susp)["ENABLE"] == "user_suspend" and susp["Suspend"] == "Suspended"
    assert _values(resume)["ENABLE"] == "normal_pumping" and resume["Suspend"] == "Resume"
    assert _values(basal) == {"PATTERN_NAME": "standard", "PROFILE_INDEX": "3", "RATE": "0.85",
                              "START_TIME": "30600000", "ACTION_REQUESTOR": "pump"}
    assert _values(prime)["PRIME_TYPE"] == "fixed" and prime["Prime Type"] == "Fixed"
    assert [r["Index"] for r in table] == ["1", "2", "3", "4"]
    assert {r["Raw-Device Type"] for r in table} == {"Paradigm 522"}
    assert {r["Raw-ID"] + r["Raw-Upload ID"] + r["Raw-Seq Num"] for r in table} == {""}


def test_number_formats():
    assert [carelink_csv.num(x) for x in (2.0, 0.9, 39.175, -0.6, 0.05, 7)] == \
        ["2", "0.9", "39.175", "-0.6", "0.05", "7"]
    assert [carelink_csv.dbl(x) for x in (2, 0.05, 2.15)] == ["2.0", "0.05", "2.15"]
    assert [carelink_csv.sig3(x) for x in (27.65, 29.95, 31.075, 0.15, 2, 20.15)] == \
        ["27.6", "30.0", "31.1", "0.15", "2.0", "20.2"]
    assert carelink_csv.hms(1440) == "24:00:00"


def test_the_table_is_the_doc():
    text = carelink_csv.table_markdown()
    for entry in carelink_csv.TABLE:
        for row in entry.rows:
            assert "| %s |" % row.raw_type in text
            for v in row.values:
                assert "`%s`" % v.key in text


# --------------------------------------------------------------------------------------------
# the command line


def run(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("DECOCARE_MODEL", "DECOCARE_SERIAL", "SERIAL")}
    proc = subprocess.run([sys.executable, str(ROOT / "bin" / "mm-export.py")] + [str(a) for a in args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def page_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("carelink")
    made = [enc("BolusWizard", "523", "2015-03-01T11:59:58", bg=150, carb_input=40, bolus_estimate=3.0),
            enc("UnabsorbedInsulinBolus", "523", data=[{"amount": 1.5, "age": 60}]),
            enc("Bolus", "523", "2015-03-01T12:00:00", programmed=3.0, amount=3.0, unabsorbed=1.5)]
    (page,) = history.build_pages(made, "523")
    good, text = tmp / "page0.data", tmp / "notes.txt"
    good.write_bytes(page)
    text.write_bytes(b"pump notes: 2.5 U at lunch\n")
    return {"good": good, "text": text, "missing": tmp / "nope.data"}


def test_cli_prints_the_csv(page_files):
    code, out, err = run("--format", "carelink-csv", "--model", "523", "--serial", "736868", page_files["good"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("Medtronic Diabetes CareLink Personal Data Export File")
    assert "Pump:,Paradigm Revel - 523,#736868," in lines
    start = next(i for i, line in enumerate(lines) if line.startswith("Index,"))
    table = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
    assert [r["Raw-Type"] for r in table] == ["BolusWizardBolusEstimate", "UnabsorbedInsulin", "BolusNormal"]
    assert "DEVICE DATA (3 records)" in lines


@pytest.mark.parametrize("case", ["missing", "no-model", "text"])
def test_cli_bad_input_is_one_line(page_files, case):
    args = {"missing": ["--model", "523", page_files["missing"]],
            "no-model": [page_files["good"]],
            "text": ["--model", "523", page_files["text"]]}[case]
    code, out, err = run("--format", "carelink-csv", *args)
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err

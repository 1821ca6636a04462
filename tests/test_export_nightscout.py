"""Nightscout treatments and entries (decocare.exports.nightscout) and the upload, through
bin/mm-export.py where a user would see it.  The upload is tested against tests/nightscout_fake.py
(a small stand-in speaking Nightscout API v1), not a real Nightscout."""
import datetime
import hashlib
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest
from dateutil import tz

from conftest import shared_path
from decocare import cgm, history
from decocare.errors import UploadError
from decocare.exports import nightscout
from nightscout_fake import FakeNightscout

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECRET = "a-long-test-secret"
LA = "America/Los_Angeles"


def run(*args, env=None):
    full = dict(os.environ)
    full.pop("API_SECRET", None)
    full.pop("NIGHTSCOUT_API_SECRET", None)
    full.update(env or {})
    proc = subprocess.run([sys.executable, str(ROOT / "bin" / "mm-export.py")] + [str(a) for a in args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=full)
    return proc.returncode, proc.stdout, proc.stderr


def one_line(err):
    lines = err.strip().splitlines()
    return len(lines) == 1 and "Traceback" not in err


# ------------------------------------------------------------------ pages the project builds

def _records():
    """A 523's history over the US spring-forward night (2015-03-08, 02:00 -> 03:00), oldest first."""
    e = lambda name, when, **f: history.encode_record(name, "523", when, **f)
    return [
        e("BolusWizard", "2015-03-07T23:59:58", bg=150, carb_input=40, bolus_estimate=3.0,
          food_estimate=3.0),
        e("Bolus", "2015-03-07T23:59:59", programmed=3.0, amount=3.0),
        e("BGReceived", "2015-03-08T01:00:00", amount=120, link="a1b2c3"),
        e("CalBGForPH", "2015-03-08T01:00:00", amount=120),
        e("TempBasal", "2015-03-08T01:30:00", temp="absolute", rate=0.85),
        e("TempBasalDuration", "2015-03-08T01:30:00", **{"duration (min)": 90}),
        e("Bolus", "2015-03-08T03:30:00", programmed=1.5, amount=1.5),
        # a dual wave: wizard, normal part, the square part when the normal one has gone in
        e("BolusWizard", "2015-03-08T08:00:00", carb_input=60, bolus_estimate=3.0, food_estimate=3.0),
        e("Bolus", "2015-03-08T08:01:31", programmed=1.0, amount=1.0, duration=60),
        e("Bolus", "2015-03-08T08:00:01", programmed=2.0, amount=2.0),
        e("TempBasal", "2015-03-08T09:00:00", temp="percent", rate=50),
        e("TempBasalDuration", "2015-03-08T09:00:00", **{"duration (min)": 30}),
        e("TempBasal", "2015-03-08T09:10:00", temp="absolute", rate=0),
        e("TempBasalDuration", "2015-03-08T09:10:00", **{"duration (min)": 0}),
        e("PumpSuspend", "2015-03-08T10:00:00"),
        e("PumpResume", "2015-03-08T10:30:00"),
        e("Rewind", "2015-03-08T11:00:00"),
        e("Prime", "2015-03-08T11:01:00", amount=6.5, fixed=0),
        e("Prime", "2015-03-08T11:02:00", amount=0.3, fixed=0.3),
        e("TempBasal", "2015-03-08T12:00:00", temp="absolute", rate=2.0),
        e("TempBasalDuration", "2015-03-08T12:00:00", **{"duration (min)": 60}),
        e("PumpSuspend", "2015-03-08T12:10:00"),
        e("PumpResume", "2015-03-08T12:20:00"),
        # two boluses of the same second (one of them cancelled before delivering anything)
        e("Bolus", "2015-03-08T13:00:00", programmed=0.5, amount=0.0),
        e("Bolus", "2015-03-08T13:00:00", programmed=1.2, amount=1.2),
        e("Bolus", "2015-03-08T13:30:00", programmed=0.0, amount=0.0),
    ]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ns")
    made = history.build_pages(_records(), "523")
    paths = []
    for n, page in enumerate(made):
        path = tmp / ("page-%d.data" % n)
        path.write_bytes(page)
        paths.append(path)
    glucose = tmp / "glucose.data"
    glucose.write_bytes(cgm.build_page(cgm.sgv_records([100, 110, 120], "2016-01-01T10:00:00")
                                       + [cgm.encode_record("SensorDataHigh")]))
    text = tmp / "notes.txt"
    text.write_text("not a page\n")
    return {"history": paths, "glucose": glucose, "text": text, "dir": tmp}


@pytest.fixture(scope="module")
def docs(pages):
    code, out, err = run("--format", "nightscout-treatments", "--model", "523", "--timezone", LA,
                         *pages["history"])
    assert code == 0, err
    assert err.count("\n") == 1 and "2 records gave no treatment" in err     # 0/0 bolus, tubing prime
    return json.loads(out)


def find(docs, when, event=None):
    got = [d for d in docs if d["created_at"].startswith(when) and event in (None, d["eventType"])]
    assert len(got) == 1, (when, event, got)
    return got[0]


def test_boluses_with_carbs_of_their_wizard_and_zoned_across_dst(docs):
    meal = find(docs, "2015-03-07T23:59:59", "Meal Bolus")
    assert meal["created_at"] == meal["timestamp"] == "2015-03-07T23:59:59-08:00"
    assert (meal["insulin"], meal["carbs"], meal["enteredBy"], meal["decocareType"]) == (3.0, 40, "decocare", "Bolus")
    after = find(docs, "2015-03-08T03:30:00", "Correction Bolus")     # after the change: PDT
    assert after["created_at"] == "2015-03-08T03:30:00-07:00" and after["insulin"] == 1.5
    assert "carbs" not in after


def test_a_dual_wave_is_two_parts_told_apart_with_the_carbs_once(docs):
    normal = find(docs, "2015-03-08T08:00:01")
    square = find(docs, "2015-03-08T08:01:31")
    assert (normal["eventType"], normal["insulin"], normal["carbs"], normal["bolusType"]) == \
        ("Meal Bolus", 2.0, 60, "dual-normal")
    assert (square["eventType"], square["insulin"], square["duration"], square["bolusType"]) == \
        ("Meal Bolus", 1.0, 60, "dual-square")
    assert "carbs" not in square and "dual wave" in square["notes"] == normal["notes"]


def test_boluses_of_one_second_are_one_treatment(docs):
    both = find(docs, "2015-03-08T13:00:00")
    assert both["insulin"] == 1.2 and both["programmed"] == 1.7
    assert [p["insulin"] for p in both["parts"]] == [0.0, 1.2]
    assert not [d for d in docs if d["created_at"].startswith("2015-03-08T13:30")]   # 0/0 U: none


def test_temp_basals_percent_and_cancel(docs):
    temp = find(docs, "2015-03-08T01:30:00", "Temp Basal")
    assert (temp["absolute"], temp["rate"], temp["duration"], temp["decocareType"]) == (0.85, 0.85, 90, "TempBasal")
    assert temp["created_at"] == "2015-03-08T01:30:00-08:00"
    percent = find(docs, "2015-03-08T09:00:00", "Temp Basal")
    assert percent["percent"] == -50 and percent["duration"] == 30
    assert "rate" not in percent and "absolute" not in percent      # oref0 reads rate as U/h
    cancel = find(docs, "2015-03-08T09:10:00", "Temp Basal")
    assert cancel["duration"] == 0 and "absolute" not in cancel


def test_suspend_is_a_zero_temp_until_the_resume(docs):
    suspend = find(docs, "2015-03-08T10:00:00", "Temp Basal")
    assert (suspend["absolute"], suspend["duration"], suspend["decocareType"]) == (0, 30, "PumpSuspend")
    resume = find(docs, "2015-03-08T10:30:00", "Temp Basal")
    assert resume["duration"] == 0 and resume["decocareType"] == "PumpResume"
    # a temp basal running when the pump was suspended goes on after the resume
    again = find(docs, "2015-03-08T12:20:00", "Temp Basal")
    assert (again["absolute"], again["duration"], again["decocareType"]) == (2.0, 40, "PumpResume")


def test_a_suspend_without_resume_lasts_what_the_history_covers():
    zone = tz.gettz(LA)
    recs = [{"_type": "Bolus", "timestamp": "2015-04-01T08:45:00", "amount": 1.0, "programmed": 1.0},
            {"_type": "PumpSuspend", "timestamp": "2015-04-01T08:00:00"}]
    suspend = nightscout.treatments(recs, zone)[0]
    assert (suspend["eventType"], suspend["duration"], suspend["absolute"]) == ("Temp Basal", 45, 0)
    assert "no PumpResume" in suspend["notes"]
    alone = nightscout.treatments(recs[1:], zone)[0]
    assert alone["duration"] == 1 and "0 would be a cancel" in alone["notes"]


def test_site_and_insulin_changes(docs):
    assert find(docs, "2015-03-08T11:00:00")["eventType"] == "Insulin Change"
    site = find(docs, "2015-03-08T11:02:00")
    assert site["eventType"] == "Site Change" and "insulin" not in site
    assert not [d for d in docs if d["created_at"].startswith("2015-03-08T11:01")]    # tubing prime


def test_bg_checks_one_per_reading(docs):
    checks = [d for d in docs if d["eventType"] == "BG Check"]
    assert [(d["created_at"], d["glucose"]) for d in checks] == [
        ("2015-03-07T23:59:58-08:00", 150), ("2015-03-08T01:00:00-08:00", 120)]
    meter = checks[1]
    assert (meter["glucoseType"], meter["units"]) == ("Finger", "mg/dl")
    assert sorted(meter["sources"]) == ["BGReceived", "CalBGForPH"]


def test_treatments_are_unique_by_time_and_type_and_in_time_order(docs):
    keys = [nightscout.dedupe_key("treatments", d) for d in docs]
    assert len(set(keys)) == len(keys)
    assert keys == sorted(keys, key=lambda k: k[0])


def test_the_meter_bg_offered_again_by_the_wizard_is_the_same_reading():
    zone = tz.gettz(LA)
    recs = [{"_type": "BolusWizard", "timestamp": "2015-04-01T08:10:00", "bg": 140, "carb_input": 0},
            {"_type": "CalBGForPH", "timestamp": "2015-04-01T08:00:00", "amount": 140},
            {"_type": "BolusWizard", "timestamp": "2015-04-01T08:30:00", "bg": 140, "carb_input": 0}]
    checks = [(d["created_at"], d["sources"]) for d in nightscout.treatments(recs, zone)]
    assert checks == [("2015-04-01T08:00:00-07:00", ["CalBGForPH", "BolusWizard"]),
                      ("2015-04-01T08:30:00-07:00", ["BolusWizard"])]     # 30 min later: a new one


def test_unpaired_temp_basal_is_reported_not_guessed():
    skipped = []
    recs = [{"_type": "TempBasal", "timestamp": "2015-04-01T08:00:00", "temp": "absolute", "rate": 1.0}]
    assert nightscout.treatments(recs, tz.gettz(LA), skipped=skipped) == []
    assert "without its TempBasalDuration" in skipped[0]["why"]


def test_mapping_table_is_the_doc():
    text = (ROOT / "docs" / "nightscout.md").read_text()
    assert nightscout.mapping_markdown() in text, "paste nightscout.mapping_markdown() into docs/nightscout.md"
    used = {d["eventType"] for d in nightscout.treatments(
        history.merge([history.decode_page(p, "523") for p in history.build_pages(_records(), "523")]),
        tz.gettz(LA))}
    assert used <= set(nightscout.EVENT.values())


# ------------------------------------------------------------------ entries

def test_entries_from_glucose_pages(pages):
    code, out, err = run("--format", "nightscout-entries", "--timezone", "Europe/Paris",
                         "--glucose", pages["glucose"])
    assert code == 0 and err == ""
    got = json.loads(out)
    assert [(e["sgv"], e["dateString"]) for e in got] == [
        (100, "2016-01-01T09:50:00+01:00"), (110, "2016-01-01T09:55:00+01:00"),
        (120, "2016-01-01T10:00:00+01:00")]                      # SensorDataHigh (400) is no reading
    first = got[0]
    assert (first["type"], first["device"]) == ("sgv", "decocare")
    assert first["date"] == int(datetime.datetime(2016, 1, 1, 8, 50, tzinfo=datetime.timezone.utc).timestamp() * 1000)


# ------------------------------------------------------------------ real pages

def _pairs():
    base = shared_path("fixtures", "carelink")
    with open(base / "pairs.json") as fh:
        pairs = json.load(fh)
    tree = base / pairs.get("tree", "tree/")
    out = []
    for pair in pairs["pairs"]:
        results = []
        for page in pair["pages"]:
            path = tree / page["path"]
            if "hexdump_segment" in page or not path.exists():
                break
            data = path.read_bytes()
            if "offset" in page:
                data = data[page["offset"]:page["offset"] + page["length"]]
            results.append(history.decode_page(data, pair["model"], lenient=True))
        else:
            out.append((pair["id"], pair["model"], results))
    return out


def test_real_pairs_every_bolus_and_temp_basal_exactly_once():
    zone = tz.gettz(LA)
    totals = {"pairs": 0, "boluses": 0, "temps": 0, "units": 0.0}
    for pair, model, results in _pairs():
        recs = history.merge(results)
        docs = nightscout.treatments(recs, zone)
        local = lambda d: d["created_at"][:19]
        keys = [nightscout.dedupe_key("treatments", d) for d in docs]
        assert len(set(keys)) == len(keys), pair
        boluses = [r for r in recs if r["_type"] == "Bolus"]
        bolus_docs = [d for d in docs if d.get("decocareType") == "Bolus"]
        # the same second is one treatment: match the decoded boluses second by second
        by_time = {}
        for r in boluses:
            if r.get("amount") or r.get("programmed"):
                by_time.setdefault(r["timestamp"], []).append(r["amount"])
        assert sorted(by_time) == sorted(local(d) for d in bolus_docs), pair
        for d in bolus_docs:
            assert d["insulin"] == pytest.approx(sum(by_time[local(d)]), abs=1e-9), (pair, d)
        decoded = sum(r["amount"] for r in boluses)
        assert sum(d["insulin"] for d in docs if "insulin" in d) == pytest.approx(decoded, abs=1e-6), pair
        durations = {r["timestamp"]: r["duration (min)"] for r in recs if r["_type"] == "TempBasalDuration"}
        temps = [r for r in recs if r["_type"] == "TempBasal"]
        temp_docs = {local(d): d for d in docs if d.get("decocareType") == "TempBasal"}
        assert len(temp_docs) == len(temps), pair
        for r in temps:
            d = temp_docs[r["timestamp"]]
            assert d["duration"] == durations[r["timestamp"]], pair
            if d["duration"] and r["temp"] == "absolute":
                assert d["absolute"] == r["rate"], pair
            elif d["duration"]:
                assert d["percent"] == r["rate"] - 100, pair
        totals["pairs"] += 1
        totals["boluses"] += len(boluses)
        totals["temps"] += len(temps)
        totals["units"] += decoded
    assert totals["pairs"] >= 10 and totals["boluses"] > 1000 and totals["temps"] > 20
    print("\nreal pairs: %(pairs)d pairs, %(boluses)d boluses (%(units).2f U), %(temps)d temp basals, "
          "each in the treatments once" % totals)


def test_real_pages_through_the_command_line():
    base = shared_path("fixtures", "carelink", "tree", "analysis", "sarak", "raw")
    page_files = [base / ("ReadHistoryData-page-%d.data" % n) for n in range(3)]
    code, out, err = run("--format", "nightscout-treatments", "--model", "723", "--timezone", LA,
                         *page_files)
    assert code == 0, err
    docs = json.loads(out)
    recs = history.merge(history.decode_page(p.read_bytes(), "723") for p in page_files)
    assert sum(d.get("insulin", 0) for d in docs) == pytest.approx(sum(r["amount"] for r in recs
                                                                       if r["_type"] == "Bolus"))
    assert all(d["created_at"][19:] in ("-07:00", "-08:00") for d in docs)


# ------------------------------------------------------------------ upload against the fake

@pytest.fixture
def site():
    with FakeNightscout(SECRET) as fake:
        yield fake


def _exactly_once(fake, docs):
    want = sorted(nightscout.dedupe_key("treatments", d) for d in docs)
    have = sorted(nightscout.dedupe_key("treatments", d) for d in fake.posted)
    return want == have and len(fake.docs["treatments"]) == len(docs)


def test_upload_twice_sends_once(site, docs):
    lines = []
    first = nightscout.upload(site.url, SECRET, "treatments", docs, log=lines.append)
    assert (first["sent"], first["already_there"], first["collection"]) == (len(docs), 0, "treatments")
    assert first["url"] == site.url
    second = nightscout.upload(site.url + "/", SECRET, "treatments", docs, log=lines.append)
    assert (second["sent"], second["already_there"], second["differs"]) == (0, len(docs), [])
    assert _exactly_once(site, docs)
    # Nightscout gives created_at back in UTC; the match is on the instant
    assert site.docs["treatments"][0]["created_at"].endswith(".000Z")
    text = "\n".join(lines) + json.dumps([first, second])
    assert SECRET not in text and hashlib.sha1(SECRET.encode()).hexdigest() not in text


@pytest.mark.parametrize("mode", ["store-then-drop", "drop", "500"])
def test_an_interrupted_upload_run_again_leaves_each_treatment_once(site, docs, monkeypatch, mode):
    monkeypatch.setattr(nightscout, "BATCH", 3)
    site.fail_after_posts, site.fail_mode = 2, mode
    with pytest.raises(UploadError) as failed:
        nightscout.upload(site.url, SECRET, "treatments", docs)
    message = str(failed.value)
    assert "6 of %d documents were sent before the failure" % len(docs) in message
    assert "\n" not in message and SECRET not in message
    site.fail_after_posts = None
    again = nightscout.upload(site.url, SECRET, "treatments", docs)
    stored_in_flight = 3 if mode == "store-then-drop" else 0
    assert again["already_there"] == 6 + stored_in_flight
    assert again["sent"] == len(docs) - 6 - stored_in_flight
    assert _exactly_once(site, docs)
    assert nightscout.upload(site.url, SECRET, "treatments", docs)["sent"] == 0


def test_what_the_site_holds_is_read_page_by_page(site, docs, monkeypatch):
    monkeypatch.setattr(nightscout, "PAGE", 2)
    nightscout.upload(site.url, SECRET, "treatments", docs)
    again = nightscout.upload(site.url, SECRET, "treatments", docs)
    assert again["sent"] == 0 and len(site.gets) > len(docs) // 2
    assert all(q["count"] == ["2"] for q in site.gets)


def test_our_own_changed_treatment_is_updated_in_place_never_added(site, docs):
    """A suspend uploaded while it lasted (or a square bolus still delivering) is replaced by
    its completed form on the next upload: one treatment, the new values."""
    nightscout.upload(site.url, SECRET, "treatments", docs)
    changed = [dict(d) for d in docs]
    bolus = next(d for d in changed if d.get("decocareType") == "Bolus")
    bolus["insulin"] += 1
    summary = nightscout.upload(site.url, SECRET, "treatments", changed)
    assert (summary["sent"], summary["updated"], summary["differs"]) == (1, 1, [])
    assert len(site.docs["treatments"]) == len(docs)
    held = [d for d in site.docs["treatments"] if d.get("decocareType") == "Bolus"
            and d["created_at"] == nightscout._iso_utc(nightscout.dedupe_key("treatments", bolus)[0])]
    assert [d["insulin"] for d in held] == [bolus["insulin"]]
    again = nightscout.upload(site.url, SECRET, "treatments", changed)
    assert (again["sent"], again["updated"]) == (0, 0)


def test_a_changed_treatment_another_program_entered_is_reported_not_touched(site, docs):
    theirs = [dict(d, enteredBy="someone-else") for d in docs]
    nightscout.upload(site.url, SECRET, "treatments", theirs)
    changed = [dict(d) for d in docs]
    bolus = next(d for d in changed if d.get("decocareType") == "Bolus")
    bolus["insulin"] += 1
    summary = nightscout.upload(site.url, SECRET, "treatments", changed)
    assert summary["sent"] == 0 and len(summary["differs"]) == 1
    assert summary["differs"][0]["ours"]["insulin"] == bolus["insulin"]


def test_a_redirect_is_not_followed(site, docs):
    site.redirect = "https://elsewhere.example"
    with pytest.raises(UploadError, match="redirects to https://elsewhere.example/api/v1/treatments.json"):
        nightscout.upload(site.url, SECRET, "treatments", docs)
    assert site.posted == []


def test_dry_run_sends_nothing(site, docs):
    summary = nightscout.upload(site.url, SECRET, "treatments", docs, dry_run=True)
    assert (summary["sent"], summary["would_send"], site.posts) == (0, len(docs), 0)


def test_cli_upload_twice_and_entries(site, pages, docs):
    env = {"API_SECRET": SECRET}
    args = ("--format", "nightscout-treatments", "--model", "523", "--timezone", LA,
            "--upload", site.url)
    code, out, err = run(*args, *pages["history"], env=env)
    assert code == 0, err
    assert json.loads(out)["sent"] == len(docs)
    code, out, err = run(*args, *pages["history"], env={"NIGHTSCOUT_API_SECRET": SECRET})
    assert code == 0 and json.loads(out)["sent"] == 0 and json.loads(out)["already_there"] == len(docs)
    assert SECRET not in out + err
    entries = ("--format", "nightscout-entries", "--timezone", "UTC", "--glucose", pages["glucose"],
               "--upload", site.url)
    code, out, err = run(*entries, env=env)
    assert code == 0 and json.loads(out)["sent"] == 3
    code, out, err = run(*entries, env=env)
    assert code == 0 and json.loads(out)["sent"] == 0 and len(site.docs["entries"]) == 3


def test_cli_interrupted_then_run_again(site, pages, docs):
    env = {"API_SECRET": SECRET}
    args = ("--format", "nightscout-treatments", "--model", "523", "--timezone", LA,
            "--upload", site.url, *pages["history"])
    site.fail_after_posts, site.fail_mode = 0, "store-then-drop"
    code, out, err = run(*args, env=env)
    assert code == 1 and out == ""
    assert "0 of %d documents were sent before the failure" % len(docs) in err
    site.fail_after_posts = None
    code, out, err = run(*args, env=env)
    assert code == 0 and json.loads(out)["sent"] == 0           # the batch in flight had arrived
    assert _exactly_once(site, docs)


def test_cli_wrong_secret_is_one_line_and_sends_nothing(site, pages):
    code, out, err = run("--format", "nightscout-treatments", "--model", "523", "--upload", site.url,
                         *pages["history"], env={"API_SECRET": "wrong-secret"})
    assert code == 1 and out == "" and one_line(err)
    assert "401" in err and "0 of" in err and "wrong-secret" not in err
    assert site.posts == 0 and site.posted == []


def test_cli_unreachable_site_is_one_line(pages):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # closed again when the block ends: nobody listens
    code, out, err = run("--format", "nightscout-treatments", "--model", "523",
                         "--upload", "http://127.0.0.1:%d" % port, *pages["history"],
                         env={"API_SECRET": SECRET})
    assert code == 1 and out == "" and one_line(err) and "unreachable" in err


def test_cli_not_a_nightscout_site_is_one_line(site, pages):
    site.html = True
    code, out, err = run("--format", "nightscout-treatments", "--model", "523", "--upload", site.url,
                         *pages["history"], env={"API_SECRET": SECRET})
    assert code == 1 and one_line(err) and "not JSON" in err and site.posted == []


@pytest.mark.parametrize("args, env, needle", [
    (("--format", "nightscout-treatments", "HISTORY"), {}, "--model is required"),
    (("--format", "nightscout-treatments", "--model", "523", "TEXT"), {}, "not a history page"),
    (("--format", "nightscout-treatments", "--model", "523", "/no/such.data"), {}, "no such file"),
    (("--format", "nightscout-treatments", "--model", "523", "--timezone", "Mars/Olympus", "HISTORY"),
     {}, "unknown time zone"),
    (("--format", "nightscout-entries"), {}, "needs --glucose"),
    (("--format", "nightscout-entries", "--glucose", "HISTORY"), {}, "glucose"),
    (("--format", "nightscout-treatments", "--model", "523", "--upload", "https://ns.example", "HISTORY"),
     {}, "$API_SECRET"),
    (("--format", "nightscout-treatments", "--model", "523", "--upload", "ftp://ns.example", "HISTORY"),
     {"API_SECRET": SECRET}, "not a Nightscout site URL"),
])
def test_bad_input_is_one_line(pages, args, env, needle):
    subst = {"HISTORY": pages["history"][0], "TEXT": pages["text"]}
    code, out, err = run(*[subst.get(a, a) for a in args], env=env)
    assert code != 0 and out == "" and one_line(err) and needle in err, (code, err)

"""Downstream check of the Nightscout path: oref0 fed the treatments a Nightscout site holds after
``mm-export.py --upload`` must compute the insulin on board and carbs it computes from
``mm-history.py``'s pump history (which tests/test_oref0_run.py holds to the vendor's truth).

Many loops read their insulin history back from Nightscout (oref0's lib/iob/history.js takes
"Meal Bolus"/"Correction Bolus" and "Temp Basal" treatments beside pump records).  For every
primary pair of ../shared/fixtures/carelink: the pages decoded and merged (mm-history.py's
list), the same records as treatments uploaded to the local fake Nightscout and read back
newest first as a site answers, then oref0's own IOB and meal code (../shared/tools/
oref0_iob.js, oref0 0.7.1) on both every 30 minutes inside the pair's windows.

What may differ, and is checked to be only that:
* IOB at a point inside a suspend the pump had not yet resumed: the treatment carries the
  suspend's whole length (known from the later resume), pump history at that point only the
  suspend; oref0 books zero temps in 0.05 U steps, so the two differ by at most 0.05 U;
* carbs at a point within a minute of a wizard: the treatment puts the wizard's carbs on its
  bolus, logged up to 60 s later.
"""
import datetime
import hashlib
import json
import os
import subprocess
import urllib.request

from dateutil import tz

from decocare import history
from decocare.exports import nightscout

from conftest import shared_path
from nightscout_fake import FakeNightscout

SECRET = "downstream-check-secret"
STEP = datetime.timedelta(minutes=30)


def primary_pairs():
    base = shared_path("fixtures", "carelink")
    pairs = json.loads((base / "pairs.json").read_text())
    tree = base / pairs.get("tree", "tree/")
    for pair in pairs["pairs"]:
        if not pair.get("primary"):
            continue
        results = []
        for page in pair["pages"]:
            data = (tree / page["path"]).read_bytes()
            if "offset" in page:
                data = data[page["offset"]:page["offset"] + page["length"]]
            results.append(history.decode_page(data, pair["model"], lenient=True))
        yield pair, history.merge(results)


def grid(windows):
    points = set()
    for start, end in windows:
        start, end = datetime.datetime.fromisoformat(start), datetime.datetime.fromisoformat(end)
        t = start.replace(minute=0, second=0)
        while t <= end:
            if t >= start:
                points.add(t)
            t += STEP
    return sorted(points)


def through_nightscout(records):
    """The records as treatments, uploaded to a fake site and read back newest first."""
    docs = nightscout.treatments(records, tz.UTC)
    with FakeNightscout(SECRET) as site:
        summary = nightscout.upload(site.url, SECRET, "treatments", docs)
        assert summary["sent"] == len(docs)
        request = urllib.request.Request(site.url + "/api/v1/treatments.json?count=10000000",
                                         headers={"API-SECRET": hashlib.sha1(SECRET.encode()).hexdigest()})
        with urllib.request.urlopen(request) as answer:
            back = json.load(answer)
    assert len(back) == len(docs)
    for doc in back:     # the harness picks records by a naive `timestamp`; oref0 reads created_at
        doc["timestamp"] = datetime.datetime.fromisoformat(
            doc["created_at"].replace("Z", "+00:00")).astimezone(datetime.timezone.utc) \
            .replace(tzinfo=None).isoformat()
    return back


def run_oref0(module, records, treatments, points, tmp_path):
    rates = sorted(r["rate"] for r in records if r["_type"] == "BasalProfileStart" and r.get("rate"))
    rate = rates[len(rates) // 2] if rates else 1.0
    profile = dict(dia=4, curve="bilinear", current_basal=rate, max_daily_basal=rate,
                   basalprofile=[dict(i=0, start="00:00:00", minutes=0, rate=rate)],
                   suspend_zeros_iob=True, maxCOB=120)
    job = tmp_path / "job.json"
    job.write_text(json.dumps(dict(profile=profile, points=[p.isoformat() for p in points],
                                   lookback_hours=24, carb_hours=6,
                                   histories={"pump": records, "nightscout": treatments})))
    done = subprocess.run(["node", str(shared_path("tools", "oref0_iob.js")), str(job)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, NODE_PATH=str(module.parent), TZ="UTC"))
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)["results"]


def open_suspend(records, t):
    """True when the pump was suspended at ``t`` and resumed only after it."""
    before = [(datetime.datetime.fromisoformat(r["timestamp"]), r["_type"]) for r in records
              if r["_type"] in ("PumpSuspend", "PumpResume") and r.get("timestamp")
              and datetime.datetime.fromisoformat(r["timestamp"]) <= t]
    return bool(before) and max(before)[1] == "PumpSuspend"


def near_wizard(records, t):
    edges = (t, t - datetime.timedelta(hours=6))
    for rec in records:
        if rec["_type"].startswith("BolusWizard") and rec.get("carb_input"):
            when = datetime.datetime.fromisoformat(rec["timestamp"])
            if any(datetime.timedelta(0) <= edge - when <= datetime.timedelta(seconds=60) for edge in edges):
                return True
    return False


def test_oref0_computes_the_same_iob_and_carbs_from_nightscout_as_from_pump_history(oref0, tmp_path):
    total = agree = carbs_agree = 0
    lines = []
    for pair, records in primary_pairs():
        points = grid(pair["windows"])
        results = run_oref0(oref0, records, through_nightscout(records), points, tmp_path)
        pump, site = results["pump"], results["nightscout"]
        iob_off = [i for i, (a, b) in enumerate(zip(pump["iob"], site["iob"])) if abs(a - b) > 0.01]
        carbs_off = [i for i, (a, b) in enumerate(zip(pump["carbs"], site["carbs"])) if abs(a - b) > 0.5]
        for i in iob_off:
            assert open_suspend(records, points[i]) and abs(pump["iob"][i] - site["iob"][i]) <= 0.05 + 1e-9, \
                (pair["id"], points[i].isoformat(), pump["iob"][i], site["iob"][i])
        for i in carbs_off:
            assert near_wizard(records, points[i]), (pair["id"], points[i].isoformat(),
                                                     pump["carbs"][i], site["carbs"][i])
        total += len(points)
        agree += len(points) - len(iob_off)
        carbs_agree += len(points) - len(carbs_off)
        lines.append("%s: %d points, IOB off %d, carbs off %d" % (pair["id"], len(points),
                                                                len(iob_off), len(carbs_off)))
    print("\n".join(lines))
    print("oref0-from-nightscout iob: %d/%d points within 0.01 U; carbs: %d/%d" % (agree, total,
                                                                                 carbs_agree, total))
    assert total > 10000 and agree >= 0.99 * total and carbs_agree >= 0.999 * total

"""One OpenAPS loop, end to end, on the emulator: a generated CGM pump (523, three weeks of history
on several pages across midnights, two-entry carb ratio / ISF / target schedules, a five-entry
basal profile), mm-openaps.py writes the report files, oref0 0.7.1's own bin/*.js run on them
with node, and oref0's suggestion goes back through ``mm-temp-basals.py set --from``:

  oref0-get-profile      at several times of day: the ISF, carb ratio, target and basal in force
                         are the pump's schedule entries at that time
  oref0-calculate-iob    equal to oref0 on the emulator's own generated events, time-sorted
  oref0-meal             equal likewise; the carbs are the generated wizard carbs of the last 6 h
  oref0-determine-basal  -> suggested.json -> mm-temp-basals.py set --from -> delivered, and the
                         emulator's ledger holds that TempBasal exactly once, with oref0's rate
                         and duration

"Now" for oref0 is the pump's clock (tests/js/fake_now.js makes node's Date say so), in the
pump's zone (TZ and --timezone Europe/Paris).  oref0 comes from npm as in tests/test_oref0.py.
"""
import datetime
import json
import os
import pathlib
import subprocess

import pytest
from dateutil import tz

from decocare.emulator import Emulator, generate
from decocare.tools import openaps, registry, writes

from test_tools import SERIAL, ops

HERE = pathlib.Path(__file__).resolve().parent
FAKE_NOW = HERE / "js" / "fake_now.js"
ZONE = "Europe/Paris"
START = datetime.datetime(2026, 1, 10, 0, 40, 0)   # the pump clock: 40 minutes after midnight
# seed -> what its generated history makes oref0 do at START (the test checks the chain, not
# these values): 18: BG 64, bolus insulin and carbs on board -> a zero temp for 120 minutes;
# 42: a low temp basal earlier (negative basal IOB), carbs -> the neutral temp (the basal in
# force); 44: BG 128 with carbs -> 1.85 U/h (a 0.05 U/h step of the 523) for 30 minutes.
SEEDS = (18, 42, 44)
PREFERENCES = {"max_iob": 3}
pytestmark = pytest.mark.slow


def node(module, script, args, now, cwd):
    """Run oref0's bin/``script`` with node, "now" = ``now`` (ISO with offset), TZ = the pump's."""
    done = subprocess.run(["node", "-r", str(FAKE_NOW), str(module / "bin" / script)] + args, cwd=str(cwd),
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TZ=ZONE, FAKE_NOW=now))
    assert done.returncode == 0 and done.stdout.strip(), (script, done.returncode, done.stderr[-2000:])
    return json.loads(done.stdout)


def mm_openaps(e, out, capsys, *extra):
    with pytest.raises(SystemExit) as done:
        registry.run(openaps.main, ["--port", e.url, "--serial", SERIAL, "--out", str(out), "--timezone", ZONE]
                     + list(extra), prog="mm-openaps.py")
    err = capsys.readouterr().err
    assert done.value.code == 0, err
    return {name: json.loads((out / name).read_text()) for name in os.listdir(out) if name.endswith(".json")}


def in_force(entries, minutes):
    """The entry of a pump schedule [(start in half-hours, value...)] in force at ``minutes``."""
    return [e for e in sorted(entries) if e[0] * 30 <= minutes][-1]


def get_profile(module, folder, now):
    (folder / "preferences.json").write_text(json.dumps(PREFERENCES))
    return node(module, "oref0-get-profile.js",
                ["settings.json", "bg_targets.json", "insulin_sensitivities.json", "basal_profile.json",
                 "preferences.json", "carb_ratios.json", "--model", "model.json"], now, folder)


def test_oref0_get_profile_uses_the_schedule_entry_in_force_at_each_time_of_day(oref0, tmp_path, capsys):
    with Emulator(model="523", serial=SERIAL, timing="fast", start=START) as e:
        mm_openaps(e, tmp_path, capsys, "--only", "status,profile")
        pump = e.pump
        basal = pump.profiles[pump.settings["selected_pattern"]]
    seen = []
    for hhmm in ("01:00", "03:00", "08:00", "12:00", "23:00"):
        hour, minute = map(int, hhmm.split(":"))
        now = START.replace(hour=hour, minute=minute).replace(tzinfo=tz.gettz(ZONE)).isoformat()
        profile = get_profile(oref0, tmp_path, now)
        minutes = hour * 60 + minute
        want = {"sens": in_force(pump.sensitivities, minutes)[1],
                "carb_ratio": in_force(pump.carb_ratios, minutes)[1],
                "min_bg": max(80, in_force(pump.bg_targets, minutes)[1]),
                "current_basal": in_force(basal, minutes)[1]}
        got = {key: profile[key] for key in want}
        assert got == want, hhmm
        assert profile["max_bg"] == profile["min_bg"] and profile["dia"] == pump.settings["insulin_action_hours"]
        assert profile["max_basal"] == pump.settings["max_basal"]
        seen.append((hhmm, got))
    print("\noref0-get-profile by time of day: %s" % "; ".join(
        "%s ISF %s CR %s target %s basal %s" % (t, g["sens"], g["carb_ratio"], g["min_bg"], g["current_basal"])
        for t, g in seen))
    # every entry of every two-entry schedule was in force at one of the times
    for key in ("sens", "carb_ratio", "min_bg"):
        assert len({g[key] for _, g in seen}) == 2


def generated_history(seed, zone):
    """The emulator's own generated events as oref0 input: newest first by time, zoned."""
    out = []
    for name, when, fields in generate.events("523", START, seed=seed):
        rec = {"_type": name, "timestamp": when.replace(tzinfo=zone).isoformat()}
        rec.update({k: (v.isoformat() if isinstance(v, datetime.date) else v) for k, v in fields.items()})
        out.append(rec)
    return sorted(out, key=lambda r: r["timestamp"], reverse=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_loop_end_to_end(oref0, tmp_path, capsys, seed):
    zone = tz.gettz(ZONE)
    with Emulator(model="523", serial=SERIAL, timing="fast", start=START, seed=seed) as e:
        assert len(e.pump.history.pages) >= 3                      # several pages, across midnights
        files = mm_openaps(e, tmp_path, capsys)
        assert len(files) == 15
        now = files["clock-zoned.json"]
        clock = datetime.datetime.fromisoformat(files["clock.json"])
        stamps = {r["timestamp"][:10] for r in files["pumphistory.json"]}
        assert len(stamps) >= 2                                    # the 24 h cross midnight

        profile = get_profile(oref0, tmp_path, now)
        (tmp_path / "profile.json").write_text(json.dumps(profile))
        minutes = clock.hour * 60 + clock.minute
        assert profile["sens"] == in_force(e.pump.sensitivities, minutes)[1]
        assert profile["carb_ratio"] == in_force(e.pump.carb_ratios, minutes)[1]

        # insulin on board: ours = oref0 on the generated events themselves
        (tmp_path / "generated-zoned.json").write_text(json.dumps(generated_history(seed, zone)))
        iob = node(oref0, "oref0-calculate-iob.js", ["pumphistory-zoned.json", "profile.json", "clock-zoned.json"],
                   now, tmp_path)
        truth = node(oref0, "oref0-calculate-iob.js", ["generated-zoned.json", "profile.json", "clock-zoned.json"],
                     now, tmp_path)
        assert iob == truth and abs(iob[0]["iob"]) > 0.01
        (tmp_path / "iob.json").write_text(json.dumps(iob))

        # carbs: ours = oref0 on the generated events = the wizard carbs of the last 6 h
        meal_args = ["profile.json", "clock-zoned.json", "glucose.json", "basal_profile.json"]
        meal = node(oref0, "oref0-meal.js", ["pumphistory-zoned.json"] + meal_args, now, tmp_path)
        assert meal == node(oref0, "oref0-meal.js", ["generated-zoned.json"] + meal_args, now, tmp_path)
        carbs = sum(f["carb_input"] for name, when, f in generate.events("523", START, seed=seed)
                    if name == "BolusWizard" and clock - datetime.timedelta(hours=6) < when <= clock)
        assert meal["carbs"] == carbs
        (tmp_path / "meal.json").write_text(json.dumps(meal))

        suggested = node(oref0, "oref0-determine-basal.js",
                         ["iob.json", "temp_basal.json", "glucose.json", "profile.json", "--meal", "meal.json"],
                         now, tmp_path)
        assert "rate" in suggested and "duration" in suggested, suggested
        assert suggested["bg"] == files["glucose.json"][0]["glucose"]
        (tmp_path / "suggested.json").write_text(json.dumps(suggested))
        e.ledger.clear()

        with pytest.raises(SystemExit) as done:
            registry.run(writes.temp_basals_main, ["--port", e.url, "--serial", SERIAL, "--json", "set",
                                                   "--from", str(tmp_path / "suggested.json")], prog="mm-temp-basals.py")
        out = json.loads(capsys.readouterr().out)
        assert done.value.code == 0 and out["outcome"] == "delivered", out
        delivered = e.ledger.deliveries()
        assert [(d["op"], d["rate"], d["duration"]) for d in delivered] == \
            [("TempBasal", suggested["rate"], suggested["duration"])]
        assert ops(e).count("TempBasal") == 1

        # the next loop iteration sees it: the running temp basal and its history records
        after = mm_openaps(e, tmp_path / "next", capsys, "--only", "status,history", "--hours", "1")
        assert after["temp_basal.json"]["rate"] == suggested["rate"]
        assert suggested["duration"] - 1 <= after["temp_basal.json"]["duration"] <= suggested["duration"]
        newest = [r for r in after["pumphistory.json"] if r["_type"] in ("TempBasal", "TempBasalDuration")][:2]
        assert {r["_type"] for r in newest} == {"TempBasal", "TempBasalDuration"}
    print("\nseed %d at %s: IOB %.3f U (basal %.3f, bolus %.3f), carbs %s g, COB %s g, BG %s -> %s U/h for %s min "
          "(%s)" % (seed, now, iob[0]["iob"], iob[0]["basaliob"], iob[0]["bolusiob"], meal["carbs"],
                    meal["mealCOB"], suggested["bg"], suggested["rate"], suggested["duration"],
                    suggested["reason"][:100]))

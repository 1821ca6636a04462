"""A plausible generated pump history, deterministic from a seed (the demo pump's past).

A few weeks of what a pump records: boluses (some through the bolus wizard, with insulin on
board lists on x23+), temp basals, reservoir rewinds and primes, suspends and resumes, daily
totals; encoded with ``decocare.history.encode_record`` so the decoders must read them back.
"""
import datetime
import random

from .. import cgm, history
from ..models import get_model

GLUCOSE_BLOCK = 48            # sensor values (4 hours) dated by one SensorTimestamp
GLUCOSE_BLOCKS_PER_PAGE = 19  # 19 x (48 + 5) bytes = 1007 of a page's 1022


def events(model, end, seed=0, weeks=3):
    """``[(record name, timestamp, fields)]`` oldest first, ending before ``end``."""
    model = get_model(model)
    rng = random.Random(seed)
    out = []
    day0 = (end - datetime.timedelta(weeks=weeks)).replace(hour=0, minute=0, second=0)
    step = 0.025 if model.larger else 0.1
    day = day0
    while day + datetime.timedelta(days=1) <= end:
        today = []
        if (day - day0).days % 3 == 0:
            t = day + datetime.timedelta(hours=rng.randint(7, 9), minutes=rng.randint(0, 59))
            today += [("Rewind", t, {}),
                      ("Prime", t + datetime.timedelta(minutes=2), {"amount": 8.5, "fixed": 0}),
                      ("Prime", t + datetime.timedelta(minutes=4), {"amount": 0.5, "fixed": 0.5})]
        total = 0.0
        for hour in sorted(rng.sample(range(7, 22), rng.randint(3, 5))):
            t = day + datetime.timedelta(hours=hour, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
            units = round(rng.uniform(0.5, 6.0) / step) * step
            units = round(units, 3)
            if rng.random() < 0.6 and model.family != "x12":   # x12 wizard is another record
                carbs = rng.randint(20, 80)
                wizard = {"bg": rng.randint(80, 220), "carb_input": carbs, "units": "mgdl",
                          "carb_ratio": 10, "sensitivity": 50, "bg_target_low": 100,
                          "bg_target_high": 120, "food_estimate": round(carbs / 10.0 / step) * step,
                          "correction_estimate": 0, "unabsorbed_insulin_total": 0,
                          "bolus_estimate": units}
                today.append(("BolusWizard", t, {k: round(v, 3) if isinstance(v, float) else v
                                                 for k, v in wizard.items()}))
            fields = {"amount": units, "programmed": units, "duration": 0}
            if model.larger:
                fields["unabsorbed"] = 0
            today.append(("Bolus", t, fields))
            total += units
        for _ in range(rng.randint(1, 3)):
            t = day + datetime.timedelta(hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
            rate = round(rng.choice([0.0, 0.3, 0.5, 1.2, 1.5]), 3)
            today += [("TempBasal", t, {"temp": "absolute", "rate": rate}),
                      ("TempBasalDuration", t, {"duration (min)": 30 * rng.randint(1, 4)})]
        if rng.random() < 0.2:
            t = day + datetime.timedelta(hours=rng.randint(10, 20), minutes=rng.randint(0, 59))
            today += [("PumpSuspend", t, {}), ("PumpResume", t + datetime.timedelta(minutes=rng.randint(5, 60)), {})]
        today.sort(key=lambda e: e[1])
        out += today
        day += datetime.timedelta(days=1)
        out.append(("ResultDailyTotal", day + datetime.timedelta(minutes=1),
                    {"amount": round((total + 18.0) * 40) / 40, "valid_date": (day - datetime.timedelta(days=1)).date()}))
    return [e for e in out if e[1] < end]


def encode(model, evts):
    raws = []
    for name, when, fields in evts:
        stamp = None if name == "ResultDailyTotal" else when
        raws.append(history.encode_record(name, model, timestamp=stamp, **fields))
    return raws


def glucose_values(end, seed=0, weeks=3):
    """``[(time, sgv)]`` every 5 minutes up to ``end``: a bounded random walk in mg/dL."""
    rng = random.Random(seed + 1)
    count = GLUCOSE_BLOCK * ((weeks * 7 * 288) // GLUCOSE_BLOCK)
    newest = end.replace(second=0) - datetime.timedelta(minutes=end.minute % 5)
    sgv, out = 120, []
    for i in range(count):
        sgv = min(300, max(60, sgv + rng.choice((-6, -4, -2, 0, 0, 2, 4, 6))))
        out.append((newest - datetime.timedelta(minutes=5 * (count - 1 - i)), sgv))
    return out


def glucose_pages(end, seed=0, weeks=3):
    """``{page number: 1024 bytes}`` (highest number = newest page) of sensor values, each block
    of values dated by the SensorTimestamp the pump writes after them, CRC16 valid."""
    values = glucose_values(end, seed, weeks)
    blocks = [values[i:i + GLUCOSE_BLOCK] for i in range(0, len(values), GLUCOSE_BLOCK)]
    pages = {}
    for n, first in enumerate(range(0, len(blocks), GLUCOSE_BLOCKS_PER_PAGE), start=1):
        records = []
        for block in blocks[first:first + GLUCOSE_BLOCKS_PER_PAGE]:
            records += cgm.sgv_records([v for _, v in block], block[-1][0])
        pages[n] = cgm.build_page(records)
    return pages


def generate(model, end, seed=0, weeks=3):
    """Keyword arguments for ``Pump``: the generated history records (and, on CGM pumps, the
    glucose pages)."""
    out = {"records": encode(model, events(model, end, seed, weeks))}
    if get_model(model).has_cgm:
        out["glucose"] = glucose_pages(end, seed, weeks)
    return out

"""Downstream check: oref0 (the OpenAPS algorithm) must see every bolus we decode.

oref0's IOB code (lib/iob/history.js) walks pump history newest first and silently skips any
record listed after an older one.  decocare 0.0.31 lists records in page order, and x23 pumps
write the square half of a dual-wave bolus before its normal half with a later timestamp, so
oref0 loses boluses.  We run oref0's own code (npm ``oref0`` 0.7.1) on every real page.

oref0 is the ``oref0`` fixture of conftest.py ($DECOCARE_OREF0, or npm into ~/.cache/decocare/oref0;
a skip with the reason when node or npm cannot).
"""
import json
import os
import pathlib
import subprocess


from decocare import history
from decocare.errors import DecocareError

from conftest import shared_path

HERE = pathlib.Path(__file__).resolve().parent


def oref0_boluses(module, pages):
    """{page id: {count, insulin}} of the boluses oref0's IOB code keeps from each record list."""
    done = subprocess.run(["node", str(HERE / "js" / "oref0_boluses.js"), str(module)],
                          input=json.dumps(pages), capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TZ="UTC"))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def boluses_only(records):
    return [r for r in records if r["_type"] == "Bolus"]


def test_oref0_keeps_every_decoded_bolus_of_every_real_page(oref0, page_index):
    ours, page_order, expected = [], [], {}
    for entry in page_index:
        if entry["kind"] != "pump_history" or entry["condition"] != "complete":
            continue
        data = shared_path("fixtures", "pages", entry["bin"]).read_bytes()
        try:
            result = history.decode_page(data, (entry["pump"]["model"] or "522").rstrip("?"))
        except DecocareError:
            continue                      # the 3 listed cut-out windows (tests/test_history_corpus.py)
        mine = boluses_only(result.records)
        if not mine:
            continue
        expected[entry["id"]] = (len(mine), sum(r["amount"] for r in mine))
        ours.append({"id": entry["id"], "records": mine})
        # decocare 0.0.31's order: page order reversed (newest record of the page first)
        page_order.append({"id": entry["id"], "records": boluses_only(result.raw_order)[::-1]})
    assert len(expected) > 300
    kept = oref0_boluses(oref0, ours)
    lost = {pid: (n, units, kept[pid]) for pid, (n, units) in expected.items()
            if kept[pid]["count"] != n or abs(kept[pid]["insulin"] - units) > 1e-6}
    assert not lost, "oref0 dropped boluses of our newest-first output: %s" % sorted(lost.items())[:5]

    # The negative control: the same boluses in page order lose insulin in oref0.
    kept_raw = oref0_boluses(oref0, page_order)
    missing = sum(n - kept_raw[pid]["count"] for pid, (n, _) in expected.items())
    units = sum(u - kept_raw[pid]["insulin"] for pid, (_, u) in expected.items())
    print("\noref0: %d pages, %d boluses (%.1f U) all kept from our order; page order loses %d "
          "boluses (%.1f U)" % (len(expected), sum(n for n, _ in expected.values()),
                                sum(u for _, u in expected.values()), missing, units))
    assert missing > 0 and units > 0

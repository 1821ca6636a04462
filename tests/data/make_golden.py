#!/usr/bin/env python3
"""Write the golden set in tests/data/golden/: what the core is held to without ../shared.

* ``<model>-history-<N>.page``: the history pages the emulator generates for a fixed start and
  seed (page 0 newest), and ``<model>-glucose-<N>.page`` its newest glucose page (523);
* ``<model>-history.json``: their decoding, one time-ordered list (what list_history.py --json
  prints over all pages);
* ``client-523.transcript``: a short session of decocare's own client with the emulated 523
  (ReadPumpModel, ReadCurPageNumber, every history page), one JSON USB operation per line in the
  format of ../shared/fixtures/transcripts (``dir`` w/r, ``hex``).

The names avoid ``ReadHistoryData-page-N.data`` and ``.jsonl`` on purpose: those are how real
material from ../shared looks, and this is not real material.  Run from the checkout:
``python3 tests/data/make_golden.py`` (tests/test_golden.py says when it must be run again).
"""
import datetime
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from decocare import history  # noqa: E402
from decocare.commands import Pump  # noqa: E402
from decocare.emulator import Emulator  # noqa: E402
from decocare.link import Link  # noqa: E402
from decocare.session import Session  # noqa: E402
from decocare.stick import Stick  # noqa: E402

GOLDEN = os.path.join(HERE, "golden")
START = datetime.datetime(2026, 1, 10, 12, 0, 0)
SERIAL = "208850"
SETS = (("523", 5, 2), ("522", 7, 1))        # model, seed, weeks


def emulator(model, seed, weeks, **extra):
    return Emulator(model=model, serial=SERIAL, seed=seed, weeks=weeks, start=START, **extra)


class Recorder:
    """A pyserial-like port over an emulator device that records every USB operation."""

    def __init__(self, device):
        self.device, self.timeout, self.port, self.ops = device, 0.5, "recorder", []

    def write(self, data):
        self.ops.append({"dir": "w", "hex": bytes(data).hex()})
        return self.device.write(data)

    def read(self, size):
        data = self.device.read(size, self.timeout)
        self.ops.append({"dir": "r", "hex": bytes(data).hex()})
        return data

    def close(self):
        pass


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    for name in os.listdir(GOLDEN):
        os.unlink(os.path.join(GOLDEN, name))
    for model, seed, weeks in SETS:
        with emulator(model, seed, weeks) as emu:
            pages = emu.pump.history.pages
            results = []
            for n, page in enumerate(pages):
                with open(os.path.join(GOLDEN, "%s-history-%d.page" % (model, n)), "wb") as fh:
                    fh.write(page)
                results.append(history.decode_page(page, model))
            with open(os.path.join(GOLDEN, "%s-history.json" % model), "w") as fh:
                json.dump(history.merge(results), fh, indent=2, sort_keys=True)
                fh.write("\n")
            if emu.pump.glucose:
                newest = max(emu.pump.glucose)
                with open(os.path.join(GOLDEN, "%s-glucose-%d.page" % (model, newest)), "wb") as fh:
                    fh.write(emu.pump.glucose[newest])
    with emulator(*SETS[0]) as emu:
        recorder = Recorder(emu)
        stick = Stick(Link(recorder), poll_interval=0.002, chunk_interval=0.002)
        stick.open()
        pump = Pump(Session(stick, SERIAL))
        pump.model
        for n in range(pump.page_count()):
            pump.history_page(n)
    with open(os.path.join(GOLDEN, "client-523.transcript"), "w") as fh:
        for op in recorder.ops:
            fh.write(json.dumps(op) + "\n")
    print("wrote %s" % GOLDEN)


if __name__ == "__main__":
    main()

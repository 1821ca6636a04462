#!/usr/bin/env python3
"""Decode every real history and glucose page of ../shared (or $DECOCARE_SHARED) and print
pages/s and records/s, plus the coverage line over the whole history corpus (each page with
the model the index gives it). A measurement, not a test: nothing is asserted.

usage: python benchmarks/bench_history.py [--rounds N]
"""
import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decocare import cgm, history  # noqa: E402
from decocare.errors import NotAPage  # noqa: E402


def load(shared):
    index = json.loads((shared / "fixtures" / "pages" / "index.json").read_text())["pages"]
    out = []
    for page in index:
        if page["kind"] in ("pump_history", "glucose"):
            out.append((page, (shared / "fixtures" / "pages" / page["bin"]).read_bytes()))
    return out


def decode(page, data):
    if page["kind"] == "glucose":
        return cgm.decode_page(data, lenient=True)
    return history.decode_page(data, page["pump"]["model"], lenient=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shared = pathlib.Path(os.environ.get("DECOCARE_SHARED", ROOT.parent / "shared"))
    if not (shared / "fixtures" / "pages" / "index.json").exists():
        sys.exit("bench_history: no real pages at %s (set DECOCARE_SHARED)" % shared)
    pages = load(shared)
    totals = [0, 0, 0, 0, 0]
    for page, data in pages:
        if page["kind"] != "pump_history":
            continue
        totals[4] += 1
        try:
            result = decode(page, data)
        except NotAPage:
            totals[2] += len(data)
            continue
        totals[0] += len(result.entries)
        totals[1] += len(result.unknown)
        totals[2] += result.unaccounted
        totals[3] += bool(result.complete)
    for kind in ("pump_history", "glucose"):
        chosen = [(p, d) for p, d in pages if p["kind"] == kind]
        n_pages = n_records = 0
        start = time.perf_counter()
        for _ in range(args.rounds):
            for page, data in chosen:
                try:
                    n_records += len(decode(page, data).entries)
                except NotAPage:
                    pass
                n_pages += 1
        took = time.perf_counter() - start
        print("%-12s %5d pages x %d rounds: %8.0f pages/s %10.0f records/s" % (
            kind, len(chosen), args.rounds, n_pages / took, n_records / took))
    print("history corpus coverage: %d records, %d unknown, %d unaccounted bytes, "
          "%d/%d pages complete" % tuple(totals))


if __name__ == "__main__":
    main()

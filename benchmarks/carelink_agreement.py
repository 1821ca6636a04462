#!/usr/bin/env python3
"""How much of CareLink's own export ``mm-export.py --format carelink-csv`` reproduces.

For every pair of ../shared/fixtures/carelink/pairs.json (a real CareLink CSV export and the
raw history pages of the same pump): decode the pages (decocare.history, lenient), merge them,
run decocare.exports.carelink_csv.write, parse both CSVs with the parser of
../shared/tools/vendor_check.py, and for every vendor row of a type vendor_check maps
(``VENDOR_MAP``) inside the pair's windows and device filter look for a row of ours with the same
Raw-Type at the same second whose Raw-Values are equal key by key (numbers numerically, strings
case-insensitively) -- every key except the CareLink database ids (``*_DATUM``) -- and whose
human columns are equal too (filled by the vendor: ours must hold the same text, numerically).
Rows are paired one to one, best match first.

    python3 benchmarks/carelink_agreement.py [--shared DIR] [--pair ID ...] [--examples N]

prints one line per pair, the gap categories with counts and reasons, and last
    carelink-csv-agreement: M/N vendor rows (P%)     (primary pairs)
``DECOCARE_SHARED`` (or --shared) points at the shared/ folder (default ../shared).
"""
import argparse
import collections
import csv
import datetime
import importlib.util
import io
import json
import os
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decocare import history  # noqa: E402
from decocare.exports import carelink_csv  # noqa: E402

# vendor keys that are CareLink database ids (no pump byte holds them); never compared
DB_ID_KEYS = ("BOLUS_ESTIMATE_DATUM", "NEW_CONFIG_DATUM", "OLD_CONFIG_DATUM", "PATTERN_DATUM")

# gap categories that are understood, with the reason (a category is "RawType: what")
EXPLAINED = collections.OrderedDict()


def shared_dir(given=None):
    return pathlib.Path(given or os.environ.get("DECOCARE_SHARED") or ROOT.parent / "shared")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, str(path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tools(shared):
    return (_load("vendor_check", shared / "tools" / "vendor_check.py"),
            _load("vendor_pages", shared / "tools" / "vendor_pages.py"))


def decode_pair(pair, shared, vp):
    tree = shared / "fixtures" / "carelink" / "tree"
    results = [history.decode_page(vp.page_bytes(str(tree), e), pair["model"], lenient=True)
               for e in pair["pages"]]
    return history.merge(results)


def _equal(vendor, ours):
    if ours is None:
        return False
    a, b = vendor.strip(), ours.strip()
    try:
        return abs(float(a) - float(b)) <= 1e-6
    except ValueError:
        return a.lower() == b.lower()


def _read(vc, text=None, path=None):
    """vendor_check's parse, plus each row's human columns (by Index)."""
    if path is None:
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
            fh.write(text)
            path = fh.name
        try:
            return _read(vc, path=path)
        finally:
            os.unlink(path)
    meta, evs = vc.read_csv(path)
    raw = open(path, "rb").read().decode("latin-1")
    table = list(csv.reader(io.StringIO(raw)))
    hi = meta["header_lines"]
    hdr = [c.strip() for c in table[hi]]
    human_cols = hdr[4:hdr.index("Raw-Type")]
    by_index = {}
    for r in table[hi + 1:]:
        if r and r[0].strip():
            by_index[r[0].strip()] = {c: r[j].strip() for j, c in enumerate(hdr) if c in human_cols and j < len(r)}
    for e in evs:
        e["human"] = {k: v for k, v in by_index.get(e["index"], {}).items() if v}
    return meta, evs


def compare_pair(pair, shared, vc, vp, records=None):
    """-> dict(n, m, gaps=Counter(category), examples={category: [text]})."""
    if records is None:
        records = decode_pair(pair, shared, vp)
    buf = io.StringIO()
    carelink_csv.write(records, buf, pair["model"], serial=None)
    _, ours = _read(vc, text=buf.getvalue())
    _, vendor = _read(vc, path=str(shared / "fixtures" / "carelink" / "tree" / pair["csv"]))
    windows = [(datetime.datetime.fromisoformat(a), datetime.datetime.fromisoformat(b), 0)
               for a, b in pair["windows"]]
    pool = collections.defaultdict(list)
    for e in ours:
        pool[(e["type"], e["ts"])].append(e)
    res = dict(n=0, m=0, gaps=collections.Counter(), examples=collections.defaultdict(list),
               extra=collections.Counter())
    wanted = []
    for v in vendor:
        if v["type"] not in vc.VENDOR_MAP:
            continue
        if pair.get("device") and pair["device"] not in v["device"]:
            continue
        if not vc.in_window(v["ts"], windows, v["type"] == "ResultDailyTotal"):
            continue
        wanted.append(v)
    # score every candidate, assign one to one, best first
    scored = []
    for vi, v in enumerate(wanted):
        for oi, o in enumerate(pool.get((v["type"], v["ts"]), ())):
            diffs = _diffs(v, o)
            scored.append((len(diffs), vi, id(o), diffs, o))
    scored.sort(key=lambda s: (s[0], s[1]))
    taken_v, taken_o, best = set(), set(), {}
    for score, vi, oid, diffs, o in scored:
        if vi in taken_v or oid in taken_o:
            continue
        taken_v.add(vi)
        taken_o.add(oid)
        best[vi] = diffs
    # rows of ours (of a counted type, inside the windows) that no vendor row took
    for o in ours:
        if (o["type"] in vc.VENDOR_MAP and id(o) not in taken_o
                and vc.in_window(o["ts"], windows, o["type"] == "ResultDailyTotal")):
            res["extra"][o["type"]] += 1
    for vi, v in enumerate(wanted):
        res["n"] += 1
        if vi not in best:
            cat = "%s: no row of ours at that second" % v["type"]
            detail = "%s %s" % (v["ts"], v["raw_values"][:100])
        elif best[vi]:
            cat = "%s: %s differs" % (v["type"], "+".join(sorted(k for k, _, _ in best[vi])))
            detail = "%s %s" % (v["ts"], "; ".join("%s vendor=%r ours=%r" % d for d in best[vi]))
        else:
            res["m"] += 1
            continue
        res["gaps"][cat] += 1
        res["examples"][cat].append(detail)
    return res


def _diffs(v, o):
    out = []
    for key, value in v["values"].items():
        if key in DB_ID_KEYS:
            continue
        if not _equal(value, o["values"].get(key)):
            out.append((key, value, o["values"].get(key)))
    for col, text in v["human"].items():
        if not _equal(text, o["human"].get(col)):
            out.append(("[%s]" % col, text, o["human"].get(col)))
    return out


def measure(shared, only=None, primary_only=True):
    vc, vp = tools(shared)
    pairs = json.load(open(shared / "fixtures" / "carelink" / "pairs.json"))["pairs"]
    out = []
    for pair in pairs:
        if only and pair["id"] not in only:
            continue
        if primary_only and not pair.get("primary"):
            continue
        out.append((pair, compare_pair(pair, shared, vc, vp)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", help="the shared/ folder (default $DECOCARE_SHARED or ../shared)")
    p.add_argument("--pair", nargs="*", help="only these pair ids")
    p.add_argument("--all", action="store_true", help="also the secondary pairs (never totalled)")
    p.add_argument("--examples", type=int, default=3, help="examples printed per gap category")
    args = p.parse_args(argv)
    shared = shared_dir(args.shared)
    if not (shared / "fixtures" / "carelink" / "pairs.json").exists():
        print("carelink_agreement: no pairs.json under %s (set DECOCARE_SHARED)" % shared, file=sys.stderr)
        return 2
    results = measure(shared, args.pair, primary_only=not args.all)
    tot_n = tot_m = 0
    gaps, extra = collections.Counter(), collections.Counter()
    examples = collections.defaultdict(list)
    for pair, res in results:
        primary = bool(pair.get("primary"))
        print("%s %s: %d/%d vendor rows (%.2f%%)" % (pair["id"], "primary" if primary else "secondary",
                                                     res["m"], res["n"], 100.0 * res["m"] / max(res["n"], 1)))
        if primary:
            tot_n += res["n"]
            tot_m += res["m"]
            gaps.update(res["gaps"])
            extra.update(res["extra"])
            for cat, ex in res["examples"].items():
                examples[cat].extend("%s %s" % (pair["id"], e) for e in ex)
    print("gaps (primary pairs):")
    for cat, count in gaps.most_common():
        print("  %5d  %s -- %s" % (count, cat, EXPLAINED.get(cat, "UNEXPLAINED")))
        for e in examples[cat][:args.examples]:
            print("           %s" % e)
    print("rows of ours with no vendor row at that second (primary pairs, inside the windows): %s"
          % (", ".join("%s %d" % kv for kv in extra.most_common()) or "none"))
    print("carelink-csv-agreement: %d/%d vendor rows (%.2f%%)" % (tot_m, tot_n, 100.0 * tot_m / max(tot_n, 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

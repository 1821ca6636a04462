#!/usr/bin/env python3
"""Fit the emulator's real-time latencies to the real USB transcripts, and print the fit with its
evidence (which files, how many samples, the bounds each one gives).

    python benchmarks/fit_timing.py [--transcripts DIR] [--json]

Input: ../shared/fixtures/transcripts (or $DECOCARE_SHARED/fixtures/transcripts): decocare debug
logs (``t`` = ms of PROCESS:START since the port was opened, ``t_end`` = PROCESS:END, one clock
per ``epoch``) and USBlyzer captures of Medtronic's own CareLink software (``t`` = ms with µs
resolution: an OUT's completion, an IN's completion; ``t_req`` = the IN's submission).

Method.  Every TransmitPacket starts an *exchange*: the stick operations up to the next
TransmitPacket (same epoch; for markdown excerpts the same text segment).  Each ReadStatus poll
of the exchange says how many reply frames had arrived by then (frames already read + frames
buffered, sizes 14 + 64·k), so every frame's arrival gets an interval relative to the
TransmitPacket: after the last poll that did not show it, at or before the first poll that did.
Bounds are taken conservatively from the host's times: a poll that did not show an event bounds
it from below by (poll start - TransmitPacket end), a poll that did bounds it from above by
(poll end - TransmitPacket start); for the vendor captures the stick is taken to answer a
status at the moment its OUT arrives (the vendor posts the IN 100 ms later; this reading gives
the same page fit as the decocare logs, which have no such gap).  Runs that appear in two logs
(status-quo.log repeats the others; xiali's raw/download.log is log142-10cm.txt) are counted once.

* multi-frame replies (16-frame history/glucose pages; 3-frame basal profiles): per page, the
  line arrival(k) = first + (k-1)·pace that lies deepest inside all of its 16 intervals (the
  Chebyshev centre of the feasible set, exact over the line's breakpoints); reported per source
  as median / min / max over pages.  Profiles (3 intervals each) are fitted pooled.
* single-frame replies, write ACKs, RF timeouts (kind 5 after the stick's retries), the
  PowerControl wake-up: the interval of the reply's arrival per exchange; the *consensus* is the
  range of values that at least half of the exchanges' intervals contain (the largest such
  share when none reaches a half), and the hard bounds are the largest lower / smallest upper.
* USB turnaround (vendor only): IN completion - IN submission, p50 per answer size.

The proposed ``Timing.REAL`` (decocare/emulator/stick.py) is the median page fit over all pages,
the consensus centres elsewhere; ``tests/test_emulator_timing.py`` recomputes these bounds at
test time and measures the emulator against them.
"""
import argparse
import collections
import glob
import json
import os
import pathlib
import statistics
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FRAME = 64
MULTI_OPCODES = {0x80: 16, 0x9A: 16, 0x92: 3, 0x93: 3, 0x94: 3}     # frames of each multi-frame reply
POWER_CONTROL = 0x5D
VENDOR_STATUS_TOLERANCE = 0.5      # ms: a vendor status is the stick's state within this of its OUT


def default_folder():
    shared = pathlib.Path(os.environ.get("DECOCARE_SHARED", ROOT.parent / "shared"))
    return shared / "fixtures" / "transcripts"


# --- reading the transcripts -------------------------------------------------------------------

class Exchange:
    """One TransmitPacket and what the host saw until the next one (times in ms after it)."""

    def __init__(self, source, vendor, tx):
        raw = bytes.fromhex(tx["hex"])
        self.source, self.vendor = source, vendor
        self.opcode, self.frames, self.retries, self.button = raw[13], raw[11], raw[10], raw[9]
        self.params = ((raw[7] & 0x7F) << 8 | raw[8]) > 0
        self.polls = []        # (lo, hi, flags, size)
        self.reads = []        # (lo, hi, kind, eod, length)
        self.tx = tx

    @property
    def kinds(self):
        return [r[2] for r in self.reads]

    def first_ready(self):
        """(lo, hi] of the moment the stick first had reply bytes buffered, or None."""
        lo = 0.0
        for a, b, flags, size in self.polls:
            if flags & 1 and size:
                return (lo, b)
            lo = max(lo, a)
        return None


def _pairs(ops):
    """(write, read) pairs in order: the stick answers every command once, in order."""
    pending, out = [], []
    for op in ops:
        if op["dir"] == "w":
            pending.append(op)
        elif pending and op["hex"]:
            out.append((pending.pop(0), op))
        elif pending and op.get("status") == "cancelled":
            pending.pop(0)                # the vendor gave up on this answer (ReadRadio(0))
        elif pending and not op["hex"]:
            continue                      # a zero-length read: the answer is still to come
    return out


def load(folder=None):
    """Every exchange of every transcript, runs logged twice counted once."""
    folder = pathlib.Path(folder or default_folder())
    seen, out = set(), []
    for path in sorted(glob.glob(str(folder / "*.jsonl"))):
        ops = [json.loads(line) for line in open(path)]
        if not ops:
            continue
        vendor = ops[0].get("note_src") == "usblyzer"
        markdown = ".markdown." in path
        pairs = _pairs(ops)
        for i, (w, r) in enumerate(pairs):
            if not w["hex"].startswith("0100a7") or w["t"] is None or len(w["hex"]) < 32:
                continue
            ex = Exchange(os.path.basename(path), vendor, w)
            t0 = w["t"]
            t0_end = t0 if vendor else (w.get("t_end") or t0)
            for w2, r2 in pairs[i + 1:]:
                if w2["hex"].startswith("0100a7") or w2.get("epoch") != w.get("epoch") or w2["t"] is None:
                    break
                if markdown and w2.get("seg") != w.get("seg"):
                    break
                if vendor:
                    lo, hi = w2["t"] - t0, w2["t"] - t0 + VENDOR_STATUS_TOLERANCE
                else:
                    lo, hi = w2["t"] - t0_end, (w2.get("t_end") or w2["t"]) - t0
                data = bytes.fromhex(r2["hex"])
                if w2["hex"].startswith("03") and data[:2] == b"\x01\x55" and len(data) >= 8 and data[4] == 2:
                    ex.polls.append((lo, hi, data[5], int.from_bytes(data[6:8], "big")))
                elif w2["hex"].startswith("0c") and data[:1] == b"\x02" and len(data) >= 14:
                    ex.reads.append((lo, hi, data[2], data[5] >> 7, (data[5] & 0x7F) << 8 | data[6]))
            key = (w["hex"], round(t0, 3), tuple((round(a, 3), f, s) for a, _, f, s in ex.polls[:4]))
            if key in seen:
                continue
            seen.add(key)
            out.append(ex)
    return out


# --- multi-frame replies ---------------------------------------------------------------------

def frame_bounds(ex, n):
    """Per frame 1..n, (lo, hi] of its arrival; None unless the reply came whole (EOD, n frames)."""
    chunks = [r for r in ex.reads if r[2] == 4]
    if sum(r[4] for r in chunks) != n * FRAME or not any(r[3] for r in chunks):
        return None
    lo, hi = [0.0] * n, [float("inf")] * n
    consumed = 0
    events = sorted([("p",) + p for p in ex.polls] + [("r",) + r for r in chunks], key=lambda e: e[1])
    for event in events:
        if event[0] == "p":
            _, a, b, flags, size = event
            seen = consumed + ((size - 14) // FRAME if flags & 1 and size >= 14 + FRAME else 0)
            for k in range(n):
                if k < seen:
                    hi[k] = min(hi[k], b)
                else:
                    lo[k] = max(lo[k], a)
        else:
            consumed += event[5] // FRAME
    return list(zip(lo, hi))


def line_fit(bounds_lists):
    """The line first + (k-1)*pace deepest inside every interval of ``bounds_lists`` (lists of
    (lo, hi) per frame): returns (slack, first, pace), slack = the smallest margin (ms; < 0 when
    no line meets every interval).  Exact: the margin is concave in the pace, so its maximum is
    at a breakpoint; a plateau gives its middle."""
    cons = [(k, lo, hi) for bounds in bounds_lists for k, (lo, hi) in enumerate(bounds)
            if hi != float("inf")]
    lows = [(k, lo) for k, lo, _ in cons if lo > 0]
    highs = [(k, hi) for k, _, hi in cons]

    def margin(p):
        up = min(h - k * p for k, h in highs)
        down = max((l - k * p for k, l in lows), default=up - 2 * 1e3)
        return (up - down) / 2, (up + down) / 2

    lines = [(k, v) for k, v in highs] + [(k, v) for k, v in lows]
    cands = set()
    for i, (k1, v1) in enumerate(lines):
        for k2, v2 in lines[i + 1:]:
            if k1 != k2:
                p = (v2 - v1) / (k2 - k1)
                if 50 < p < 400:
                    cands.add(round(p, 6))
    if not cands:
        cands = {140.0}
    scored = sorted((margin(p)[0], p) for p in cands)
    best = scored[-1][0]
    top = [p for s, p in scored if s >= best - 1e-6]
    pace = (min(top) + max(top)) / 2
    slack, first = margin(pace)
    return slack, first, pace


def consensus(intervals, share=1.0):
    """The range of values inside the largest number of the (lo, hi] intervals (``share`` < 1:
    inside at least that share of them, or as many as possible): (lo, hi, fraction)."""
    if not intervals:
        return None
    points = sorted({x for iv in intervals for x in iv})
    best, ranges = 0, []
    for a, b in zip(points, points[1:] + [points[-1] + 1e-3]):
        mid = (a + b) / 2 if b > a else a
        n = sum(1 for lo, hi in intervals if lo < mid <= hi)
        ranges.append((a, b, n))
        best = max(best, n)
    need = min(best, max(1, -(-len(intervals) * share // 1)))
    inside = [(a, b) for a, b, n in ranges if n >= need]
    return (min(a for a, _ in inside), max(b for _, b in inside), need / len(intervals))


def hard(intervals):
    """(largest lower bound, smallest upper bound) over intervals: what every sample allows."""
    return (max(lo for lo, _ in intervals), min(hi for _, hi in intervals))


def stats(values):
    return dict(n=len(values), median=statistics.median(values), min=min(values), max=max(values))


def fit(folder=None):
    """The whole fit as a dict (all times in seconds)."""
    exs = load(folder)
    out = dict(files=sorted({e.source for e in exs}), exchanges=len(exs))

    pages = collections.defaultdict(list)          # (vendor, n) -> [(source, bounds)]
    for ex in exs:
        n = MULTI_OPCODES.get(ex.opcode)
        if n and ex.frames == 2 and ex.polls:
            bounds = frame_bounds(ex, n)
            if bounds:
                pages[(ex.vendor, n)].append((ex.source, bounds))

    per_page = []
    groups = {}
    for vendor in (False, True):
        items = pages.get((vendor, 16), [])
        fits = [line_fit([b]) for _, b in items]
        per_page += fits
        groups["vendor" if vendor else "decocare"] = dict(
            pages=len(items), files=sorted({s for s, _ in items}),
            first=stats([f[1] / 1e3 for f in fits]), pace=stats([f[2] / 1e3 for f in fits]),
            last=stats([(f[1] + 15 * f[2]) / 1e3 for f in fits]),
            slack=stats([f[0] / 1e3 for f in fits]))
    all_pages = [b for vendor in (False, True) for _, b in pages.get((vendor, 16), [])]
    out["pages"] = dict(groups, all=dict(
        pages=len(per_page), first=stats([f[1] / 1e3 for f in per_page]),
        pace=stats([f[2] / 1e3 for f in per_page]),
        last=stats([(f[1] + 15 * f[2]) / 1e3 for f in per_page]),
        frame16=_iv(consensus([b[15] for b in all_pages])),
        frame16_hard=[x / 1e3 for x in hard([b[15] for b in all_pages])],
        frame1=_iv(consensus([b[0] for b in all_pages]))))

    profiles = pages.get((True, 3), [])
    if profiles:
        slack, first, pace = line_fit([b for _, b in profiles])
        out["profiles"] = dict(samples=len(profiles), files=sorted({s for s, _ in profiles}),
                               first=first / 1e3, pace=pace / 1e3, slack=slack / 1e3,
                               frame1=_iv(consensus([b[0] for _, b in profiles])),
                               frame3=_iv(consensus([b[2] for _, b in profiles])))

    singles = [(e, e.first_ready()) for e in exs if e.frames == 1 and not e.params
               and e.kinds[:1] == [3]]
    vendor_singles = [iv for e, iv in singles if e.vendor and iv]
    out["reply"] = dict(samples=len(vendor_singles),
                        files=sorted({e.source for e, iv in singles if e.vendor and iv}),
                        consensus=_iv(consensus(vendor_singles)),
                        hard=[x / 1e3 for x in hard(vendor_singles)],
                        decocare_upper=min((iv[1] for e, iv in singles if not e.vendor and iv),
                                           default=None))
    if out["reply"]["decocare_upper"] is not None:
        out["reply"]["decocare_upper"] /= 1e3

    timeouts = collections.defaultdict(list)
    for e in exs:
        if e.kinds[:1] == [5] and e.button != 0x55 and e.first_ready():
            timeouts[e.retries].append((e.source, e.first_ready()))
    out["rf_timeout"] = {str(r): dict(samples=len(v), files=sorted({s for s, _ in v}),
                                      hard=[x / 1e3 for x in hard([iv for _, iv in v])])
                         for r, v in sorted(timeouts.items())}

    acks = [(e.source, e.first_ready()) for e in exs if e.params and e.frames in (0, 1)
            and e.button != 0x55 and e.kinds[:1] == [1] and e.first_ready()]
    # the vendor never downloads a SetSuspend ACK; its next TransmitPacket (answered normally)
    # bounds the exchange from above
    vendor_next = []
    for f in {e.source for e in exs if e.vendor}:
        seq = [e for e in exs if e.source == f]
        for a, b in zip(seq, seq[1:]):
            if a.opcode == 0x4D and a.params and a.frames == 0 and b.kinds[:1] in ([3], [4]):
                vendor_next.append(b.tx["t"] - a.tx["t"])
    out["write_ack"] = dict(samples=len(acks), files=sorted({s for s, _ in acks}),
                            upper=min(iv[1] for _, iv in acks) / 1e3 if acks else None,
                            vendor_next_command=(min(vendor_next) / 1e3 if vendor_next else None),
                            vendor_samples=len(vendor_next))

    wakes = [(e.source, e.first_ready()) for e in exs if e.opcode == POWER_CONTROL and e.button == 0x55
             and not e.vendor and e.first_ready() and e.kinds[:1] == [1]]
    vendor_wakes = []
    for f in {e.source for e in exs if e.vendor}:
        ops = [json.loads(line) for line in open(pathlib.Path(folder or default_folder()) / f)]
        for i, op in enumerate(ops):
            if op["dir"] == "w" and op["hex"].startswith("0100a7") and op["hex"][26:28] == "5d" \
                    and op["hex"][30:32] == "01":
                nxt = next((o for o in ops[i + 1:] if o["dir"] == "r"), None)
                if nxt and nxt.get("t_req") is not None:
                    vendor_wakes.append(nxt["t_req"] - op["t"])
    out["wake"] = dict(samples=len(wakes), files=sorted({s for s, _ in wakes}),
                       upper=min(iv[1] for _, iv in wakes) / 1e3 if wakes else None,
                       vendor_samples=len(vendor_wakes),
                       vendor_stick_free_by=min(vendor_wakes) / 1e3 if vendor_wakes else None)

    usb = collections.defaultdict(list)
    for f in sorted({e.source for e in exs if e.vendor}):
        ops = [json.loads(line) for line in open(pathlib.Path(folder or default_folder()) / f)]
        last = None
        for op in ops:
            if op["dir"] == "w":
                last = op
            elif last and op.get("t_req") is not None and op["t"] is not None and op["hex"]:
                what = "radio%d" % (len(op["hex"]) // 2) if last["hex"].startswith("0c") else "status"
                usb[what].append(op["t"] - op["t_req"])
    out["usb"] = {k: dict(samples=len(v), p50=statistics.median(v) / 1e3) for k, v in sorted(usb.items())}
    out["timing"] = proposed(out)
    return out


def _iv(c):
    return None if c is None else dict(lo=c[0] / 1e3, hi=c[1] / 1e3, share=c[2])


def proposed(f):
    """``Timing.REAL`` from the fit, rounded to 0.1 ms."""
    r = lambda x: round(x, 4)                                                       # noqa: E731
    pages, reply = f["pages"]["all"], f["reply"]["consensus"]
    rf = f["rf_timeout"].get("2")
    t = dict(usb=r(f["usb"]["status"]["p50"]),
             radio_read=tuple(r(f["usb"].get("radio%d" % (14 + FRAME * k), {}).get("p50", 0.002))
                              for k in (1, 2, 3)),
             reply=r((reply["lo"] + reply["hi"]) / 2),
             first_frame=r(pages["first"]["median"]),
             frame=r(pages["pace"]["median"]))
    t["write"] = t["first_frame"]          # command packet + ACK, argument packet + ACK [INF]
    if rf:
        lo, hi = rf["hard"]
        t["rf_try"] = r((lo + hi) / 2 / 3)   # three tries (retries 2) fill the captured interval
    if "profiles" in f:
        t["profile_first"] = r(f["profiles"]["first"])
        t["profile_frame"] = r(f["profiles"]["pace"])
    return t


# --- printing ------------------------------------------------------------------------------

def _ms(x):
    return "%7.1f ms" % (1e3 * x) if x is not None else "      -   "


def report(f):
    lines = ["transcripts: %d exchanges in %d files" % (f["exchanges"], len(f["files"])), ""]
    lines.append("16-frame pages, per-page line fit (first frame, pace, 16th frame), median [min-max]:")
    for name in ("decocare", "vendor", "all"):
        g = f["pages"][name]
        if not g["pages"]:
            continue
        lines.append("  %-9s %3d pages  first %s [%s-%s]  pace %s [%s-%s]  16th %s [%s-%s]" % (
            name, g["pages"], _ms(g["first"]["median"]), _ms(g["first"]["min"]).strip(),
            _ms(g["first"]["max"]).strip(), _ms(g["pace"]["median"]), _ms(g["pace"]["min"]).strip(),
            _ms(g["pace"]["max"]).strip(), _ms(g["last"]["median"]), _ms(g["last"]["min"]).strip(),
            _ms(g["last"]["max"]).strip()))
        if "files" in g:
            lines.append("            from %s" % ", ".join(g["files"]))
    a = f["pages"]["all"]
    lines.append("  16th frame: inside %.0f%% of the pages' intervals from %s to %s; every page: %s-%s" % (
        100 * a["frame16"]["share"], _ms(a["frame16"]["lo"]).strip(), _ms(a["frame16"]["hi"]).strip(),
        _ms(a["frame16_hard"][0]).strip(), _ms(a["frame16_hard"][1]).strip()))
    if "profiles" in f:
        p = f["profiles"]
        lines.append("3-frame basal profiles (vendor, %d replies, pooled fit): first %s, pace %s, "
                     "slack %s" % (p["samples"], _ms(p["first"]).strip(), _ms(p["pace"]).strip(),
                                   _ms(p["slack"]).strip()))
    r = f["reply"]
    lines.append("single-frame reply (vendor, %d exchanges): buffered %s-%s (%.0f%% agree); "
                 "hard bounds %s / %s; decocare polls first at >= %s" % (
                     r["samples"], _ms(r["consensus"]["lo"]).strip(), _ms(r["consensus"]["hi"]).strip(),
                     100 * r["consensus"]["share"], _ms(r["hard"][0]).strip(), _ms(r["hard"][1]).strip(),
                     _ms(r["decocare_upper"]).strip()))
    for retries, t in f["rf_timeout"].items():
        lines.append("RF timeout, kind 5 after %s stick retries (%d exchanges, %s): after %s, by %s" % (
            retries, t["samples"], ", ".join(t["files"]), _ms(t["hard"][0]).strip(), _ms(t["hard"][1]).strip()))
    w = f["write_ack"]
    lines.append("write ACK (TempBasal, %d exchange, %s): buffered by %s; vendor SetSuspend: next "
                 "command answered normally %s later (%d)" % (
                     w["samples"], ", ".join(w["files"]), _ms(w["upper"]).strip(),
                     _ms(w["vendor_next_command"]).strip(), w["vendor_samples"]))
    k = f["wake"]
    lines.append("PowerControl wake-up: ACK buffered by %s (%d decocare sessions); vendor: stick "
                 "answers again by %s (%d)" % (_ms(k["upper"]).strip(), k["samples"],
                                               _ms(k["vendor_stick_free_by"]).strip(), k["vendor_samples"]))
    lines.append("USB turnaround (vendor, p50): " + ", ".join(
        "%s %s (%d)" % (name, _ms(v["p50"]).strip(), v["samples"]) for name, v in f["usb"].items()))
    lines.append("")
    lines.append("proposed Timing.REAL: " + ", ".join("%s=%s" % kv for kv in f["timing"].items()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transcripts", default=None, help="folder of *.jsonl transcripts")
    parser.add_argument("--json", action="store_true", help="print the fit as JSON")
    args = parser.parse_args(argv)
    folder = pathlib.Path(args.transcripts) if args.transcripts else default_folder()
    if not folder.is_dir():
        sys.exit("fit_timing: no transcripts at %s (set DECOCARE_SHARED)" % folder)
    f = fit(folder)
    print(json.dumps(f, indent=1, default=list) if args.json else report(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())

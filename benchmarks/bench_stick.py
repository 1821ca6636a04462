#!/usr/bin/env python3
"""Seconds and USB operations of decocare's client against the emulated stick + pump in its
real-time mode (latencies fitted to the real captures, benchmarks/fit_timing.py), each figure
as min / median / max over runs and as a ratio to the emulator's own modelled floor and to the
real-hardware reference figures (spec protocol.md §8).  A measurement that prints figures, not
a test: nothing is asserted.

    python benchmarks/bench_stick.py [--reads 20] [--pages 36] [--full-runs 1] [--tool-runs 10]
                                     [--loop-runs 5] [--skip SECTIONS] [--no-bytecode]

Sections (``--skip`` takes a comma list of their names):
  client   in-process through emulator://: single-frame reads, history pages one by one (the
           36 real pages of pump 736868 from ../shared/fixtures/pages, else a generated history),
           USB operations per page, all pages in a row;
  download python -m decocare.download against the emulator CLI on a pty (--pages, real timing):
           the whole tool, 36 pages;
  start    tool start time: python -m decocare.X --help, bin/mm-*.py --help, and one whole
           `python -m decocare.session` run against the pty;
  loop     the OpenAPS loop cycle: mm-openaps.py --only status,history, then mm-temp-basals.py
           set, with the pump awake (target 4.0 s): the emulated pump starts asleep and one
           `python -m decocare.session` run wakes it first, so the cycles find its radio window
           known open, as a loop's runs do.

Tools run with decocare's bytecode cached, as a default Python keeps it (a
PYTHONDONTWRITEBYTECODE of the caller's environment is dropped for them); --no-bytecode makes
every tool compile decocare from source.

The floors are the emulator's model (``Timing.floor``): per command the reply's arrival, one
ReadStatus and a one-frame ReadRadio; tool processes' floors count only the radio commands the
pump executed (from the emulator's ledger), not Python starting.
"""
import argparse
import contextlib
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decocare import commands                       # noqa: E402
from decocare.emulator import Emulator              # noqa: E402
from decocare.emulator.stick import Timing          # noqa: E402
from decocare.link import Link                      # noqa: E402
from decocare.session import Session                # noqa: E402
from decocare.stick import Stick                    # noqa: E402

SERIAL, MODEL = "736868", "523"
NAMES = {0x01: "TransmitPacket", 0x03: "ReadStatus", 0x0C: "ReadRadio"}
# Real hardware (spec §8; the measurements for the old tool start and loop cycle)
REF = {
    "read": {"decocare 0.0.31": 0.781, "vendor": 0.335},
    "page": {"decocare 0.0.31": 2.529, "vendor": 2.705},
    "36 pages": {"decocare 0.0.31": 93.6, "vendor": 97.0},
    "ops/page": {"decocare 0.0.31": 40, "vendor": 30},
    "start": {"decocare before": 0.48},
    "loop": {"separate tools before": 6.4},
}
TIMING = Timing("real")
SHARED = pathlib.Path(os.environ.get("DECOCARE_SHARED", ROOT.parent / "shared"))


class CountingLink(Link):
    """Counts writes by stick command so polls and radio reads can be told apart."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.by_op = Counter()

    def write(self, data):
        self.by_op[NAMES.get(data[0], "other")] += 1
        super().write(data)


# --- figures -------------------------------------------------------------------------------

ROWS = []


def row(name, values, floor=None, ref=None, unit="s", target=None):
    """One printed line: min / median / max, the median as a ratio to the floor and the refs."""
    if not values:
        ROWS.append((name, "not measured", "", ""))
        return
    lo, med, hi = min(values), statistics.median(values), max(values)
    fmt = (lambda v: "%.3f" % v) if unit == "s" else (lambda v: "%.1f" % v)
    cells = "%s / %s / %s %s" % (fmt(lo), fmt(med), fmt(hi), unit if unit == "s" else "")
    ratios = []
    if floor:
        ratios.append("%.3f x floor (%s)" % (med / floor, fmt(floor)))
    for label, value in (ref or {}).items():
        ratios.append("%.2f x %s (%s)" % (med / value, label, fmt(value)))
    if target is not None:
        ratios.append("target <= %s: %s" % (fmt(target), "met" if med <= target else "NOT met"))
    ROWS.append((name, cells, "n=%d" % len(values), "; ".join(ratios)))


def note(text):
    ROWS.append((text, None, None, None))


def show():
    width = max(len(r[0]) for r in ROWS if r[1] is not None)
    for name, cells, n, ratios in ROWS:
        if cells is None:
            print(name)
        else:
            print("  %-*s  %-28s %-5s %s" % (width, name, cells, n, ratios))


# --- the 36 real pages ---------------------------------------------------------------------------

def real_pages(folder):
    """../shared's 36 pages of pump 736868 (index.json, serial 736868, analysis/736868/logs/)
    copied into ``folder`` as ReadHistoryData-page-N.data; None when ../shared is absent."""
    index = SHARED / "fixtures" / "pages" / "index.json"
    if not index.exists():
        return None
    found = {}
    for page in json.loads(index.read_text())["pages"]:
        if page["kind"] != "pump_history" or page["pump"].get("serial") != SERIAL:
            continue
        for source in page["sources"]:
            path = source.get("path", "")
            if path.startswith("analysis/%s/logs/ReadHistoryData-page-" % SERIAL):
                found[int(path.rsplit("-", 1)[1].split(".")[0])] = SHARED / "fixtures" / "pages" / page["bin"]
    if sorted(found) != list(range(len(found))) or not found:
        return None
    os.makedirs(folder, exist_ok=True)
    for n, path in found.items():
        shutil.copy(str(path), os.path.join(folder, "ReadHistoryData-page-%d.data" % n))
    return folder


# --- sections ------------------------------------------------------------------------------------

def client(args, pages_dir):
    with Emulator(model=MODEL, serial=SERIAL, timing="real", pages=pages_dir, seed=1, weeks=8) as emu:
        link = CountingLink(emu.url)
        stick = Stick(link)
        stick.open()
        pump = commands.Pump(Session(stick, SERIAL), model=MODEL)
        pump.model
        names = ("ReadRTC", "ReadBatteryStatus", "ReadRemainingInsulin", "ReadBasalTemp")
        times, ops = [], []
        for i in range(args.reads):
            before = link.writes + link.reads
            start = time.monotonic()
            pump.raw(names[i % len(names)])
            times.append(time.monotonic() - start)
            ops.append(link.writes + link.reads - before)
        row("single-frame read, TX -> reply", times, TIMING.floor(), REF["read"])
        row("  USB ops per read", ops, unit="ops")
        count = min(args.pages, len(emu.pump.history.pages))
        times, ops, polls, reads = [], [], [], []
        start_all = time.monotonic()
        for n in range(count):
            before, mix = link.writes + link.reads, Counter(link.by_op)
            start = time.monotonic()
            pump.history_page(n)
            times.append(time.monotonic() - start)
            ops.append(link.writes + link.reads - before)
            delta = link.by_op - mix
            polls.append(delta["ReadStatus"])
            reads.append(delta["ReadRadio"])
        total = time.monotonic() - start_all
    page_floor = TIMING.floor(16, params=True)
    source = "the real pages of %s" % SERIAL if pages_dir else "a generated history"
    note("client in-process (emulator://, timing real, %s):" % source)
    row("history page (1024 B), TX -> EOD", times, page_floor, REF["page"])
    row("  USB ops per page (w+r)", ops, ref=REF["ops/page"], unit="ops", target=30)
    row("  ReadStatus polls per page", polls, unit="ops")
    row("  ReadRadio reads per page", reads, unit="ops")
    row("%d pages in a row (one session)" % count, [total], count * page_floor,
        REF["36 pages"] if count == 36 else None)
    note("  first pages settle the pacer: pages 1-3 %s s, pages %d-%d %s s (median)" % (
        "%.3f" % statistics.median(times[:3]), max(4, count - 2), count,
        "%.3f" % statistics.median(times[-3:])))


@contextlib.contextmanager
def emulator_pty(pages_dir, workdir, timing="real", env=None, faults=None):
    """``python -m decocare.emulator`` on a pty: (port, ledger path); stopped by its pid."""
    ledger = os.path.join(workdir, "ledger.jsonl")
    link = os.path.join(workdir, "carelink.tty")
    cmd = [sys.executable, "-m", "decocare.emulator", "--model", MODEL, "--serial", SERIAL,
           "--timing", timing, "--link", link, "--ledger", ledger]
    if pages_dir:
        cmd += ["--pages", pages_dir]
    if faults:
        cmd += ["--faults", faults]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    try:
        port = proc.stdout.readline().strip()
        if not port:
            raise RuntimeError("the emulator did not start")
        yield port, ledger
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def ledger_floor(ledger, since=0):
    """The modelled floor of the commands the pump executed (ledger lines ``since`` on)."""
    try:
        lines = open(ledger).read().splitlines()[since:]
    except OSError:
        return None, 0
    total = 0.0
    for line in lines:
        entry = json.loads(line)
        row_ = commands.by_name(entry["op"])
        if row_.button:                       # a PowerControl: the wake-up burst
            total += TIMING.wake
            continue
        frames = row_.reply_size // 64 if row_.frames == 2 else 1
        total += TIMING.floor(frames, params=bool(entry.get("params")))
    return total, len(lines)


def run(cmd, env, timeout=600):
    start = time.monotonic()
    out = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - start
    if out.returncode:
        print("  (%s exited %d: %s)" % (" ".join(cmd[1:3]), out.returncode, out.stderr.strip()[-300:]))
    return took, out


def download(args, pages_dir, env):
    if not pages_dir:
        note("download tool: skipped (the real pages of %s need ../shared)" % SERIAL)
        return
    times, floors = [], []
    for _ in range(args.full_runs):
        with tempfile.TemporaryDirectory() as work, emulator_pty(pages_dir, work, env=env) as (port, ledger):
            took, out = run([sys.executable, "-m", "decocare.download", port, SERIAL, "--out",
                             os.path.join(work, "out")], env)
            saved = len([f for f in os.listdir(os.path.join(work, "out")) if f.endswith(".data")]) \
                if os.path.isdir(os.path.join(work, "out")) else 0
            floor, n = ledger_floor(ledger)
            times.append(took)
            floors.append(floor)
    note("download tool on a pty (python -m decocare.download, %d pages saved, ReadPumpModel + "
         "ReadCurPageNumber + the pages):" % saved)
    row("whole tool run, 36 pages", times, statistics.median(floors), REF["36 pages"], target=87.0)


def starts(args, env):
    note("tool start (--help, no port touched):")
    cmds = [("python -c pass (Python itself)", [sys.executable, "-c", "pass"]),
            ("python -m decocare.session --help", [sys.executable, "-m", "decocare.session", "--help"]),
            ("python -m decocare.download --help", [sys.executable, "-m", "decocare.download", "--help"]),
            ("bin/mm-latest.py --help", [sys.executable, "bin/mm-latest.py", "--help"]),
            ("bin/mm-temp-basals.py --help", [sys.executable, "bin/mm-temp-basals.py", "--help"])]
    if (ROOT / "bin" / "mm-openaps.py").exists():
        cmds.append(("bin/mm-openaps.py --help", [sys.executable, "bin/mm-openaps.py", "--help"]))
    for name, cmd in cmds:
        times = [run(cmd, env)[0] for _ in range(args.tool_runs)]
        row(name, times, ref=REF["start"] if "Python" not in name else None,
            target=None if "Python" in name else 0.15)
    with tempfile.TemporaryDirectory() as work, emulator_pty(None, work, env=env) as (port, ledger):
        times, floors = [], []
        for _ in range(args.tool_runs):
            since = ledger_floor(ledger)[1]
            times.append(run([sys.executable, "-m", "decocare.session", port, SERIAL], env)[0])
            floors.append(ledger_floor(ledger, since)[0])
    row("python -m decocare.session PTY (awake pump)", times, statistics.median(floors), REF["start"])


def loop(args, pages_dir, env):
    openaps = ROOT / "bin" / "mm-openaps.py"
    if not openaps.exists():
        note("OpenAPS loop: mm-openaps.py is missing (decocare/tools/openaps.py not built yet): not measured")
        return
    cycles, reads, writes, floors, ops = [], [], [], [], Counter()
    with tempfile.TemporaryDirectory() as work, \
            emulator_pty(pages_dir, work, env=env, faults="asleep") as (port, ledger):
        base = ["--port", port, "--serial", SERIAL]
        for tool in (str(openaps), "bin/mm-temp-basals.py"):        # bytecode, when cached
            run([sys.executable, tool, "--help"], env)
        # the emulated pump starts asleep: this run wakes it (PowerControl, ~17 s), so the
        # cycles below find its radio window known open, as a loop's runs do
        run([sys.executable, "-m", "decocare.session", port, SERIAL], env)
        for i in range(args.loop_runs):
            since = ledger_floor(ledger)[1]
            a, _ = run([sys.executable, str(openaps)] + base +
                       ["--out", os.path.join(work, "monitor"), "--only", "status,history"], env)
            b, _ = run([sys.executable, "bin/mm-temp-basals.py"] + base +
                       ["set", "--rate", "%.2f" % (0.5 + 0.05 * (i % 4)), "--duration", "30"], env)
            cycles.append(a + b)
            reads.append(a)
            writes.append(b)
            floors.append(ledger_floor(ledger, since)[0])
            ops.update(json.loads(line)["op"] for line in open(ledger).read().splitlines()[since:])
    note("OpenAPS loop cycle on a pty (pump awake, radio window known open; per cycle the pump "
         "executed %s):" % ", ".join("%s %g" % (op, n / len(cycles)) for op, n in ops.items()))
    row("mm-openaps.py --only status,history", reads)
    row("mm-temp-basals.py set (checked, sent once, read back)", writes)
    row("loop cycle", cycles, statistics.median(floors), REF["loop"], target=4.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=20, help="single-frame reads (default 20)")
    parser.add_argument("--pages", type=int, default=36, help="history pages in-process (default 36)")
    parser.add_argument("--full-runs", type=int, default=1, help="whole 36-page download runs (default 1)")
    parser.add_argument("--tool-runs", type=int, default=10, help="runs per tool start (default 10)")
    parser.add_argument("--loop-runs", type=int, default=5, help="OpenAPS loop cycles (default 5)")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="tools compile decocare from source each run (no __pycache__)")
    parser.add_argument("--skip", default="", help="comma list of sections to skip: client,download,start,loop")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, DECOCARE_STATE_DIR=os.path.join(work, "state"),
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if args.no_bytecode:
            for cache in ROOT.glob("decocare/**/__pycache__"):
                shutil.rmtree(cache, ignore_errors=True)
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            print("--no-bytecode: decocare's modules are compiled from source at every tool start")
        elif env.pop("PYTHONDONTWRITEBYTECODE", None):
            print("tool runs as a default Python runs them, decocare's bytecode cached "
                  "(PYTHONDONTWRITEBYTECODE, set in this environment, is dropped for them; "
                  "--no-bytecode keeps it)")
        pages_dir = real_pages(os.path.join(work, "pages"))
        print("emulator timing real: %s" % ", ".join("%s=%s" % kv for kv in sorted(Timing.REAL.items())))
        print("modelled floors: single read %.4f s, page %.4f s, 36 pages %.1f s; Python %s"
              % (TIMING.floor(), TIMING.floor(16, True), 36 * TIMING.floor(16, True),
                 sys.version.split()[0]))
        print("figures: min / median / max, ratios of the median\n")
        if "client" not in skip:
            client(args, pages_dir)
        if "download" not in skip:
            download(args, pages_dir, env)
        if "start" not in skip:
            starts(args, env)
        if "loop" not in skip:
            loop(args, pages_dir, env)
        show()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fault soak: downloads through the real command line against an emulated pump that misbehaves,
counting per fault kind how many runs were complete, failed loudly, or ended *silently short*
(exit 0 while a page the emulated pump holds is missing or differs in the out folder -- the
failure that preceded oref0's PR#702 overdose).  Every saved page is also compared byte for byte:
a wrong page saved is counted whatever the exit code.

    python benchmarks/soak.py [--runs 10] [--workers 6] [--kinds nak,stall] [--json]

Each run starts ``python -m decocare.emulator --timing fast --pages DIR --faults SPEC,seed=N``
on its own pty (the emulated 523 #736868 serving its 36 real history pages and its real glucose
page from ../shared/fixtures/pages, or $DECOCARE_SHARED; without them, a generated history
written to a folder and served the same way), then ``python -m decocare.download PORT SERIAL
--out DIR`` and the same with ``--glucose``.  Every kind of decocare/emulator/faults.py
(POINTS and FLAGS) is soaked; exit status 1 when any run was silently short or saved a wrong page.
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decocare.emulator import faults as fault_table      # noqa: E402
from decocare.pages import page_file                      # noqa: E402

SERIAL, MODEL, CUR_PAGE = "736868", "523", 417     # the real pump's ReadCurPageNumber answer
SOURCE = re.compile(r"analysis/736868/(logs|cgm)/(ReadHistoryData|ReadGlucoseHistory)-page-(\d+)\.data$")
RUN_TIMEOUT = 240          # one download; a hang is counted as a failure of its own ("hung")

# fault kind -> the --faults settings soaked for it (each run adds seed=N)
SETTINGS = {
    "timeout": ["timeout=0.05", "timeout=0.3"],
    "drop_args": ["drop_args=0.1", "drop_args=0.5"],
    "lost_ack": ["lost_ack=0.5"],
    "nak": ["nak=0.05", "nak=0.2", "nak=0.05,nak_code=0x0d", "nak=0.5"],
    "corrupt": ["corrupt=0.01", "corrupt=0.05", "corrupt=0.2"],
    "stall": ["stall=0.05", "stall=0.2", "stall=0.5"],
    "late_usb": ["late_usb=0.002", "late_usb=0.01", "late_usb=0.05"],
    "asleep": ["asleep", "asleep,nak=0.05"],
    "out_of_range": ["out_of_range"],
}
OUTCOMES = ("complete", "failed loudly", "silently short", "wrong page", "hung")


def kinds():
    """Every fault kind the emulator knows: a new one must be given settings here."""
    known = list(fault_table.POINTS) + list(fault_table.FLAGS)
    missing = [k for k in known if k not in SETTINGS]
    if missing:
        raise SystemExit("soak.py: no soak settings for fault kind(s) %s" % ", ".join(missing))
    return known


def shared_dir():
    return pathlib.Path(os.environ.get("DECOCARE_SHARED", ROOT.parent / "shared"))


def real_pages(dest):
    """The 36 history pages and the glucose page of pump 736868 from the shared fixtures into
    ``dest`` (as the emulator's --pages wants them); False when the fixtures are not there."""
    index = shared_dir() / "fixtures" / "pages" / "index.json"
    if not index.is_file():
        return False
    found = {}
    for page in json.loads(index.read_text())["pages"]:
        if page["pump"]["serial"] != SERIAL or page["condition"] != "complete":
            continue
        for source in page["sources"]:
            match = SOURCE.search(source.get("path", ""))
            if match:
                found[(match.group(2), int(match.group(3)))] = page["bin"]
    history = sorted(n for kind, n in found if kind == "ReadHistoryData")
    if history != list(range(36)):
        return False
    dest.mkdir(parents=True, exist_ok=True)
    for (kind, n), rel in found.items():
        shutil.copyfile(index.parent / rel, dest / page_file(kind, n))
    return True


def generated_pages(dest):
    """The emulator's own generated history of a 523 (history and glucose), as files."""
    from decocare.emulator import Emulator
    dest.mkdir(parents=True, exist_ok=True)
    with Emulator(model=MODEL, serial=SERIAL) as emu:
        for n, data in enumerate(emu.pump.history.pages):
            (dest / page_file("ReadHistoryData", n)).write_bytes(data)
        for n, data in emu.pump.glucose.items():
            (dest / page_file("ReadGlucoseHistory", n)).write_bytes(data)


def pages_folder(dest):
    """Fill ``dest`` with the pages to serve; returns where they come from."""
    dest = pathlib.Path(dest)
    if real_pages(dest):
        return "the 36 real history pages and the real glucose page of pump 736868 (shared fixtures)"
    generated_pages(dest)
    return "the emulator's generated 523 history (shared fixtures not found at %s)" % shared_dir()


def expected(folder, kind):
    """{page number: bytes} the emulated pump holds of ``kind``, and the pages a complete
    download must save (history: 0..min(cur_page, 35) -- all 36 here)."""
    held = {}
    for path in pathlib.Path(folder).iterdir():
        match = re.match(r"^%s-page-(\d+)\.data$" % kind, path.name)
        if match:
            held[int(match.group(1))] = path.read_bytes()
    return held


def env():
    out = {k: v for k, v in os.environ.items()
           if k not in ("DECOCARE_PORT", "DECOCARE_SERIAL", "SERIAL", "PORT", "DECOCARE_MODEL")}
    out["PYTHONPATH"] = str(ROOT) + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    return out


class EmulatorProcess:
    """``python -m decocare.emulator`` on a pty of its own; ``port`` is its first stdout line."""

    def __init__(self, workdir, pages, spec, timing="fast", ledger=None, serial=SERIAL,
                 cur_page=CUR_PAGE, extra=()):
        link = os.path.join(workdir, "ttyUSB.emulated")
        args = [sys.executable, "-m", "decocare.emulator", "--model", MODEL, "--serial", serial,
                "--timing", timing, "--link", link]
        if cur_page is not None:
            args += ["--cur-page", str(cur_page)]
        if pages:
            args += ["--pages", str(pages)]
        if spec:
            args += ["--faults", spec]
        if ledger:
            args += ["--ledger", str(ledger)]
        self.proc = subprocess.Popen(args + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env(), cwd=workdir)
        self.port = self.proc.stdout.readline().strip()
        if not self.port:
            err = self.proc.stderr.read()
            self.proc.wait()
            raise RuntimeError("the emulator did not start: %s" % err.strip())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def judge(code, out_dir, kind, held):
    """One download's outcome: (outcome, detail)."""
    saved = {}
    for n in held:
        path = out_dir / page_file(kind, n)
        if path.exists():
            saved[n] = path.read_bytes()
    wrong = sorted(n for n, data in saved.items() if data != held[n])
    if wrong:
        return "wrong page", "pages %s saved with other bytes than the pump holds" % wrong
    missing = sorted(n for n in held if n not in saved)
    manifest = out_dir / ("%s.manifest.json" % kind)
    if code == 0:
        if missing:
            return "silently short", "exit 0 with pages %s missing" % missing
        if not manifest.exists() or not json.loads(manifest.read_text())["complete"]:
            return "silently short", "exit 0 without a manifest saying complete"
        return "complete", ""
    if manifest.exists() and json.loads(manifest.read_text())["complete"]:
        return "silently short", "exit %d but the manifest says complete" % code
    return "failed loudly", "exit %d, %d missing" % (code, len(missing))


def download(port, out_dir, glucose):
    args = [sys.executable, "-m", "decocare.download", port, SERIAL, "--out", str(out_dir)]
    if glucose:
        args.append("--glucose")
    try:
        run = subprocess.run(args, capture_output=True, text=True, env=env(), timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, ""
    return run.returncode, run.stderr


def run_one(spec, seed, pages, workdir, glucose=True):
    """One seeded run: both downloads against one emulator.  [(kind, outcome, detail, seconds)]"""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = []
    with EmulatorProcess(str(workdir), pages, "%s,seed=%d" % (spec, seed)) as emu:
        for kind, is_glucose in (("ReadHistoryData", False), ("ReadGlucoseHistory", True)):
            if is_glucose and not glucose:
                continue
            held = expected(pages, kind)
            out_dir = workdir / ("out-" + kind)
            started = time.monotonic()
            code, stderr = download(emu.port, out_dir, is_glucose)
            if code is None:
                outcome, detail = "hung", "no end within %d s" % RUN_TIMEOUT
            else:
                outcome, detail = judge(code, out_dir, kind, held)
                last = stderr.strip().splitlines()[-1:] or [""]
                if outcome != "complete":
                    detail += ": " + last[0][:200]
            out.append((kind, outcome, detail, time.monotonic() - started))
            if emu.proc.poll() is not None:
                raise RuntimeError("the emulator ended during the run: %s" % emu.proc.stderr.read())
    return out


def soak(runs, workers=6, selected=None, glucose=True, log=sys.stderr, pages=None, first_seed=0):
    """{(fault kind, setting): {outcome: count}} over ``runs`` seeds per setting, and the
    details of every run that was not complete."""
    tmp = tempfile.mkdtemp(prefix="decocare-soak-")
    try:
        if pages is None:
            pages = pathlib.Path(tmp) / "pages"
            print("serving %s" % pages_folder(pages), file=log)
        jobs = [(kind, spec, seed) for kind in (selected or kinds()) for spec in SETTINGS[kind]
                for seed in range(first_seed, first_seed + runs)]
        table, details = {}, []

        def job(item):
            kind, spec, seed = item
            return item, run_one(spec, seed, pages, pathlib.Path(tmp) / ("%s-%d" % (spec, seed)), glucose)

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for (kind, spec, seed), results in pool.map(job, jobs):
                for page_kind, outcome, detail, seconds in results:
                    row = table.setdefault((kind, spec), {o: 0 for o in OUTCOMES})
                    row[outcome] += 1
                    if outcome != "complete":
                        details.append("%s seed=%d %s: %s (%s)" % (spec, seed, page_kind, outcome, detail))
        return table, details
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def by_kind(table):
    """The table summed per fault kind."""
    out = {}
    for (kind, _), row in table.items():
        total = out.setdefault(kind, {o: 0 for o in OUTCOMES})
        for outcome, n in row.items():
            total[outcome] += n
    return out


def print_table(table, out=sys.stdout):
    print("%-26s %9s %14s %15s %11s %5s" % ("fault setting", "complete", "failed loudly",
                                            "silently short", "wrong page", "hung"), file=out)
    for (kind, spec), row in table.items():
        print("%-26s %9d %14d %15d %11d %5d" % ((spec,) + tuple(row[o] for o in OUTCOMES)), file=out)
    totals = {o: sum(row[o] for row in table.values()) for o in OUTCOMES}
    print("%-26s %9d %14d %15d %11d %5d" % (("all",) + tuple(totals[o] for o in OUTCOMES)), file=out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10, help="seeds per fault setting (default 10)")
    p.add_argument("--workers", type=int, default=6, help="runs at a time (default 6)")
    p.add_argument("--kinds", help="comma-separated fault kinds (default: every kind)")
    p.add_argument("--history-only", action="store_true", help="skip the glucose download")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--details", action="store_true", help="list every run that was not complete")
    args = p.parse_args(argv)
    selected = args.kinds.split(",") if args.kinds else None
    for kind in selected or ():
        if kind not in SETTINGS:
            p.error("unknown fault kind %r (known: %s)" % (kind, ", ".join(SETTINGS)))
    started = time.monotonic()
    table, details = soak(args.runs, args.workers, selected, not args.history_only)
    if args.json:
        print(json.dumps({"%s" % spec: row for (_, spec), row in table.items()}, indent=2))
    else:
        print_table(table)
        print("\nper fault kind:")
        for kind, row in by_kind(table).items():
            print("  %-13s %s" % (kind, ", ".join("%s %d" % (o, row[o]) for o in OUTCOMES)))
        print("%.0f s" % (time.monotonic() - started))
    if args.details:
        print("\n".join(details))
    bad = sum(row["silently short"] + row["wrong page"] for row in table.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""mm-report.py: one picture per day of pump history -- the basal actually delivered, boluses
(square ones over their duration), carbs, BGs, sensor glucose, alarms, primes, rewinds,
suspends -- and a summary line per day: our total beside the pump's own daily total.

  mm-report.py --model 523 --out reports/ ReadHistoryData-page-0.data ReadHistoryData-page-1.data
  mm-report.py --model 523 --out reports/ --glucose ReadGlucoseHistory-page-3.data -- page-*.data
  mm-report.py --serial 208850 --out reports/ --from 2015-03-01 --to 2015-03-07

Saved pages are given newest first (page 0, 1, ...), as mm-pages.py --save and
decocare.download write them; without pages the pump's whole history is read (--port/--serial).
Each day becomes DIR/report-YYYY-MM-DD.png (and .svg with --svg).  What is not in the data is
said, never guessed: a scheduled rate before the first BasalProfileStart (x22 and older pumps
write none) is unknown, and the day's total is then marked incomplete.  The computation is
decocare/report/days.py; docs/report.md explains every figure.
"""
import argparse
import datetime
import json
import os
import sys

from ..errors import EXIT_ERROR, BadInput
from . import options

DESCRIPTION = __doc__.split(": ", 1)[1].strip()
MATPLOTLIB_MISSING = "matplotlib is not installed: pip install -e '.[report]' (or pip install matplotlib)"


def _date_arg(text):
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a date YYYY-MM-DD: %r" % text)


def build_parser():
    p = options.parser("mm-report.py", DESCRIPTION)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for report-YYYY-MM-DD.png")
    p.add_argument("--glucose", nargs="+", default=[], metavar="PAGE",
                   help="glucose (CGM) pages, newest first: sensor glucose on the pictures")
    p.add_argument("--svg", action="store_true", help="also write report-YYYY-MM-DD.svg")
    p.add_argument("--json", action="store_true",
                   help="print the summaries as one JSON list instead of the table")
    p.add_argument("--days", nargs="+", type=_date_arg, metavar="YYYY-MM-DD",
                   help="only these days (default: every day with a record)")
    p.add_argument("--from", dest="first", type=_date_arg, metavar="YYYY-MM-DD",
                   help="only days from this one on")
    p.add_argument("--to", dest="last", type=_date_arg, metavar="YYYY-MM-DD",
                   help="only days up to this one")
    p.add_argument("--lenient", action="store_true",
                   help="also use saved pages that decode only in part (exit 3 after the reports)")
    p.add_argument("pages", nargs="*", metavar="PAGE", help="saved history pages, newest first")
    return p


def _matplotlib_ok():
    from ..report import draw
    try:
        draw._pyplot()
    except draw.MissingMatplotlib:
        return False
    return True


def main(argv=None):
    p = build_parser()
    args = options.parse(p, argv, serial=False)
    if args.days and (args.first or args.last):
        p.error("give --days or --from/--to, not both")
    if args.first and args.last and args.last < args.first:
        p.error("--to is before --from")
    if args.pages:
        args.model = args.model or os.environ.get("DECOCARE_MODEL")
        if not args.model:
            p.error("--model is required (record lengths depend on the pump model), e.g. --model 522")
    elif not args.serial:
        p.error("give saved history pages (newest first), or --serial SERIAL to read the pump")
    if not _matplotlib_ok():
        print("mm-report.py: %s" % MATPLOTLIB_MISSING, file=sys.stderr)
        return EXIT_ERROR
    options.writable_dir(args.out, "--out")
    records, glucose, problems = _load(args)

    from ..report import days as D, draw
    wanted = args.days
    if wanted is None:
        wanted = [d for d in D.record_days(records)
                  if (not args.first or d >= args.first) and (not args.last or d <= args.last)]
    if not wanted:
        raise BadInput("no day to report: the records hold no dated record%s"
                       % (" in the days asked for" if args.first or args.last else ""))
    reports = D.compute(records, glucose, days=wanted)
    summaries = []
    for day in reports:
        base = os.path.join(args.out, "report-%s" % day.date.isoformat())
        draw.draw(day, base + ".png")
        if args.svg:
            draw.draw(day, base + ".svg", fmt="svg")
        summaries.append(dict(day.summary, picture=base + ".png"))
    if args.json:
        json.dump(summaries, sys.stdout, indent=2)
        print()
    else:
        print(table(summaries))
    from .pumpcli import partial_exit
    return partial_exit(p.prog, problems)


def _load(args):
    """(records newest first, glucose records, [(page, problem)] of pages decoded in part)."""
    from .. import history
    if not args.pages:
        from .pages import read_pages
        with options.open_args(args) as pump:
            pages = read_pages(pump, "history", range(pump.page_count()))
        results = [result for _, result in pages]
        problems = [(n, r.problem()) for n, r in pages if not r.complete]
    else:
        from .history_cli import load_pages
        results = load_pages(args.pages, args.model, lenient=args.lenient)
        problems = [(n, r.problem()) for n, r in enumerate(results) if not r.complete]
    glucose = []
    for result in (load_pages_glucose(args) if args.glucose else []):
        glucose.extend(result.records)
    return history.merge(results), glucose, problems


def load_pages_glucose(args):
    from .history_cli import load_pages
    return load_pages(args.glucose, args.model, glucose=True, lenient=args.lenient)


def _u(value):
    return "-" if value is None else "%.2f" % (round(value, 2) + 0.0)


def table(summaries):
    """One line per day: date, complete?, basal, bolus, total, carbs, pump's total, difference."""
    lines = ["%-10s  %-10s  %7s  %7s  %7s  %5s  %7s  %7s  %s" % (
        "date", "coverage", "basal", "bolus", "total", "carbs", "pump", "diff", "why incomplete")]
    for s in summaries:
        diff = _u(s["difference"]) if s["difference_meaningful"] else "n/a"
        lines.append("%-10s  %-10s  %7s  %7s  %7s  %5s  %7s  %7s  %s" % (
            s["date"], "complete" if s["complete"] else "INCOMPLETE", _u(s["basal"]),
            _u(s["bolus"]), _u(s["total"]), s["carbs"], _u(s["pump_total"]), diff,
            "; ".join(s["incomplete_because"])))
    return "\n".join(lines)

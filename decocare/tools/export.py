"""mm-export.py: decoded pump history in the shapes other programs read.

* ``--format carelink-csv``: the rows CareLink's "Personal Data Export File" has for these
  records (its columns, ``Raw-Type`` names, ``Raw-Values``), on stdout or ``--out FILE``;
* ``--format nightscout-treatments``: Nightscout treatments (a JSON list);
* ``--format nightscout-entries``: sensor glucose as Nightscout entries, from ``--glucose`` pages;
* with ``--upload URL`` the Nightscout documents go to that site (API v1, ``API-SECRET``), each
  only once: what the site already holds (same time and type) is not sent again.

Input is saved pages, newest first (page 0, 1, ...), as ``mm-pages.py``/``decocare.download``
write them.  The conversions live in ``decocare.exports``; this module only parses arguments.
"""
import json
import os
import sys

from .. import history
from ..errors import BadInput
from . import options
from .history_cli import load_pages

FORMATS = ("carelink-csv", "nightscout-treatments", "nightscout-entries")

DESCRIPTION = __doc__.split("\n", 1)[1].strip()


def build_parser():
    p = options.Parser(prog="mm-export.py", description=DESCRIPTION,
                       formatter_class=options.RawDescription)
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="what to write (see above)")
    p.add_argument("--model", type=options.model_arg, default=os.environ.get("DECOCARE_MODEL"),
                   help="pump model of the history pages (508..754; default $DECOCARE_MODEL)")
    p.add_argument("--glucose", nargs="+", default=[], metavar="PAGE",
                   help="glucose (CGM) pages, newest first (nightscout-entries)")
    p.add_argument("--timezone", metavar="NAME",
                   help="the pump's time zone, a tz database name (default: this host's zone); "
                        "Nightscout times carry its offset")
    p.add_argument("--serial", type=options.serial_arg,
                   default=os.environ.get("DECOCARE_SERIAL") or os.environ.get("SERIAL"),
                   help="pump serial number for the CSV's device column (default $DECOCARE_SERIAL)")
    p.add_argument("--out", metavar="FILE", help="write here instead of stdout (atomically)")
    p.add_argument("--upload", metavar="URL",
                   help="Nightscout site to upload to (e.g. https://my.site); the secret comes from "
                        "$API_SECRET or $NIGHTSCOUT_API_SECRET, never the command line")
    p.add_argument("--dry-run", action="store_true",
                   help="with --upload: say what would be sent, send nothing")
    p.add_argument("--lenient", action="store_true",
                   help="export what decodes of pages that are truncated, fail their CRC or stop "
                        "at an unknown record (default: exit 3 for such a page; records after the "
                        "damage are missing from the export)")
    p.add_argument("pages", nargs="*", metavar="PAGE", help="history page files, newest first")
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.format == "nightscout-entries":
        if not args.glucose:
            p.error("nightscout-entries needs --glucose PAGE...")
    elif not args.pages:
        p.error("give the history page files (newest first)")
    if args.pages and not args.model:
        p.error("--model is required (record lengths depend on the pump model), e.g. --model 522")
    if args.upload and args.format == "carelink-csv":
        p.error("--upload sends Nightscout documents; it does not go with --format carelink-csv")
    if args.out:
        options.writable_file(args.out, "--out")
    zone = options.zone(args.timezone)
    records = history.merge(load_pages(args.pages, args.model, lenient=args.lenient)) if args.pages else []
    glucose = []
    for result in load_pages(args.glucose, args.model, glucose=True, lenient=args.lenient):
        glucose.extend(result.records)
    if args.format == "carelink-csv":
        from ..exports import carelink_csv
        return _emit(args, lambda fh: carelink_csv.write(records, fh, model=args.model,
                                                          serial=args.serial))
    from ..exports import nightscout
    secret = None
    if args.upload:         # before any work: a bad URL or no secret is one usage line
        secret = os.environ.get("API_SECRET") or os.environ.get("NIGHTSCOUT_API_SECRET")
        if not secret:
            raise BadInput("--upload needs the site's secret in $API_SECRET (or "
                           "$NIGHTSCOUT_API_SECRET); nothing was sent")
        nightscout.site_base(args.upload)
    skipped = []
    if args.format == "nightscout-treatments":
        docs, collection = nightscout.treatments(records, zone, skipped=skipped), "treatments"
    else:
        docs, collection = nightscout.entries(glucose, zone), "entries"
    if args.upload:
        summary = nightscout.upload(args.upload, secret, collection, docs, dry_run=args.dry_run,
                                    log=lambda line: print(line, file=sys.stderr))
        json.dump(summary, sys.stdout, indent=2)
        print()
        _note_skipped(skipped)
        return 0
    code = _emit(args, lambda fh: (json.dump(docs, fh, indent=2), fh.write("\n")))
    _note_skipped(skipped)
    return code


def _note_skipped(skipped):
    """One stderr line: how many records of the mapped types gave no treatment, and why."""
    if not skipped:
        return
    why = {}
    for item in skipped:
        reason = item["why"].split(":")[0]
        why[reason] = why.get(reason, 0) + 1
    print("mm-export.py: %d record%s gave no treatment (%s)" % (
        len(skipped), "s" * (len(skipped) != 1),
        "; ".join("%d %s" % (n, reason) for reason, n in sorted(why.items()))), file=sys.stderr)


def _emit(args, write):
    """Write to stdout, or to --out through a temporary file renamed into place (a reader never
    sees half an export)."""
    if not args.out:
        write(sys.stdout)
        return 0
    tmp = args.out + ".partial"
    try:
        with open(tmp, "w", newline="") as fh:
            write(fh)
        os.replace(tmp, args.out)
    except BaseException:       # Ctrl-C, a full disk: no half export is left behind
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return 0

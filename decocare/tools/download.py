"""python -m decocare.download PORT SERIAL [--out DIR]: save every history page the pump reports
as DIR/ReadHistoryData-page-N.data (--glucose: ReadGlucoseHistory-page-N.data), CRC16-checked,
with DIR/<kind>.manifest.json (pump, the range it reported, each page's outcome and sha256).

Exit 0 only when every page the pump reports is saved; otherwise the pages still missing after
the retries are named on stderr and the exit status is non-zero (5 the pump or stick did not
answer, 6 the pump refused a page it had reported).  Progress on stderr.
"""
import sys

from ..download import download, manifest_name
from . import options


def main(argv=None):
    p = options.parser("python -m decocare.download", __doc__, positionals=True)
    p.add_argument("--out", default="logs", metavar="DIR", help="where to write the pages (default logs/)")
    p.add_argument("--glucose", action="store_true",
                   help="download the CGM glucose pages instead (x22 and later)")
    args = options.parse(p, argv)
    options.writable_dir(args.out)
    with options.open_args(args) as pump:
        report = download(pump, args.out, args.glucose, serial=args.serial)
    kind = report.plan.kind
    if report.failed:
        print("%s; they were not saved (see %s)" % (report.missing_line(), manifest_name(kind)),
              file=sys.stderr)
        return report.exit_code
    n = len(report.saved)
    if not report.plan.pages:
        print("the pump reports no %s pages; nothing to save" % ("glucose" if args.glucose else "history"),
              file=sys.stderr)
    else:
        print("%d page%s saved in %s: every page the pump reported%s" % (
            n, "s" * (n != 1), args.out, "" if report.plan.bounded else " (up to the end of history)"),
            file=sys.stderr)
    return 0

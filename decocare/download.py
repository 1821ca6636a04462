"""Download every history page (or glucose page) of a pump into files, CRC-checked.

``python -m decocare.download PORT SERIAL [--out DIR]`` writes ``DIR/ReadHistoryData-page-N.data``
(default ``logs/``).  Which pages: ReadCurPageNumber's value v gives pages 0..min(v, 35) (ecc1's
reading, which matches the vendor software, spec §5.3); an x12 lacks 0x9D and keeps 32 pages.
A NAK 0x0D/0x08 for a page means the history ends there (not a failure).  A page that cannot be
read intact (CRC16, silence, stall) is reported and never written as if it were whole; the exit
status is then non-zero.
"""
import argparse
import os
import sys
import time

from . import cli
from . import session as session_cli
from .errors import EXIT_OK, CommError, Refused
from .models import get_model
from .tools.pumpcli import open_pump

END_CODES = (0x0D, 0x08)      # "no such page" / "refused": the history ends before this page
GIVE_UP_AFTER = 3             # consecutive pages lost: the pump has gone away, stop asking


def page_numbers(pump, glucose=False):
    """The pages to ask for, newest first."""
    if glucose:
        info = pump.read("ReadCurGlucosePageNumber")
        newest = info["page"]
        return list(range(newest, max(-1, newest - info["glucose"]), -1))
    try:
        return list(range(pump.page_count()))
    except Refused as exc:
        if exc.code != 0x08:
            raise
        return list(range(pump.model.history_pages))      # refuses 0x9D like an x12


def save(path, data):
    """Write through a temporary name so a file under the final name is always a whole page."""
    tmp = path + ".part"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def download(pump, out_dir, glucose=False, log=None):
    """Read the pages into ``out_dir``, progress to ``log`` (stderr).  Returns (saved page
    numbers, {page: error})."""
    log = log or sys.stderr
    name = "ReadGlucoseHistory" if glucose else "ReadHistoryData"
    read = pump.glucose_page if glucose else pump.history_page
    pages = page_numbers(pump, glucose)
    os.makedirs(out_dir, exist_ok=True)
    saved, failed = [], {}
    print("%s: %d page%s to read into %s" % (name, len(pages), "s" * (len(pages) != 1), out_dir), file=log)
    for i, page in enumerate(pages):
        start = time.monotonic()
        try:
            data = read(page)
        except Refused as exc:
            if exc.code in END_CODES:
                print("page %d: the pump has no such page (NAK 0x%02x): end of history"
                      % (page, exc.code), file=log)
                break
            failed[page] = exc
            print("page %d: NOT SAVED: %s" % (page, exc), file=log)
            continue
        except CommError as exc:
            failed[page] = exc
            print("page %d: NOT SAVED (could not be read intact): %s" % (page, exc), file=log)
            if len(failed) >= GIVE_UP_AFTER and all(p in failed for p in pages[i + 1 - GIVE_UP_AFTER:i + 1]):
                rest = pages[i + 1:]
                for p in rest:
                    failed[p] = exc
                print("%d pages in a row lost: giving up; %d more not read" % (GIVE_UP_AFTER, len(rest)), file=log)
                break
            continue
        path = os.path.join(out_dir, "%s-page-%d.data" % (name, page))
        save(path, data)
        saved.append(page)
        print("page %d: ok, %d bytes, CRC16 valid, %.1f s (%d/%d) -> %s"
              % (page, len(data), time.monotonic() - start, i + 1, len(pages), path), file=log)
    return saved, failed


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m decocare.download",
        description="Save every history page of the pump as DIR/ReadHistoryData-page-N.data "
                    "(CRC16-checked; progress on stderr).  Pages that cannot be read intact are "
                    "reported, never saved, and make the exit status non-zero.")
    parser.add_argument("--out", default="logs", metavar="DIR", help="where to write the pages (default logs/)")
    parser.add_argument("--glucose", action="store_true",
                        help="download the CGM glucose pages instead (ReadGlucoseHistory-page-N.data; x22+)")
    parser.add_argument("--model", help="the pump model (needed with --no-wake; otherwise the "
                                        "wake-up probe, ReadPumpModel, tells it)")
    parser.add_argument("--no-wake", action="store_true",
                        help="do not probe/wake the pump first (e.g. replaying a recorded download)")
    args = session_cli.parse(session_cli.add_arguments(parser), argv)
    if args.model:
        get_model(args.model)                           # BadInput for an unknown model, before the port
    with open_pump(args.port, args.serial, model=args.model, minutes=args.minutes,
                   wake=not args.no_wake) as pump:
        saved, failed = download(pump, args.out, args.glucose)
    if failed:
        print("%d page%s could not be read intact: %s" % (len(failed), "s" * (len(failed) > 1),
              " ".join(str(p) for p in sorted(failed))), file=sys.stderr)
        return next(iter(failed.values())).exit_code
    print("%d page%s saved in %s" % (len(saved), "s" * (len(saved) != 1), args.out), file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    cli.run(main, prog="decocare.download")

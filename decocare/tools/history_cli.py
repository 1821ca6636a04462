"""Command lines over decocare.history/cgm: list_history.py, list_opcodes.py, list_dates.py and
mm-decode-history-page.py (offline: saved pages, no pump).
"""
import json
import os
import stat
import sys

from .. import cgm, history, records
from ..errors import EXIT_PARTIAL, EXIT_USAGE, BadInput, NotAPage, PartialPage
from ..lib import hexdump
from .options import Parser

MAX_FILE = 1 << 16      # no page is longer; a bigger file is reported, not read whole


def _read(path):
    """A page file's bytes: only regular files (a FIFO would hang, /dev/zero never ends)."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(info.st_mode):
            raise BadInput("%s: not a regular file (a page is a saved .data file)" % path)
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE + 1)
        if len(data) > MAX_FILE:
            raise NotAPage("%s: %d bytes or more: not a history page" % (path, MAX_FILE + 1))
        return data
    except FileNotFoundError:
        raise BadInput("%s: no such file" % path)
    except IsADirectoryError:
        raise BadInput("%s: is a directory, not a page file" % path)
    except OSError as exc:
        raise BadInput("%s: %s" % (path, exc.strerror or exc))


def _model_arg(parser):
    parser.add_argument("--model", default=os.environ.get("DECOCARE_MODEL"),
                        help="pump model (508..754); record lengths depend on it "
                             "(default: $DECOCARE_MODEL)")


def _need_model(args, parser):
    if not args.model:
        parser.error("--model is required (record lengths depend on the pump model), "
                     "e.g. --model 522")
    history.as_model(args.model)


def _decode(path, args):
    """Decode one file as a history page (or glucose page with --glucose)."""
    data = _read(path)
    decoder = cgm.decode_page if getattr(args, "glucose", False) else history.decode_page
    try:
        return decoder(data, args.model, lenient=args.lenient)
    except NotAPage as exc:
        raise NotAPage("%s: %s" % (path, exc))
    except PartialPage as exc:
        if not exc.result.entries and exc.result.partial_offset == 0 and any(data):
            # not one record decodes from byte 0 on: this file is no page (a text file, a log)
            raise NotAPage("%s: not a %s page: no record decodes (%s)"
                           % (path, "glucose" if getattr(args, "glucose", False) else "history",
                              exc.result.problem()))
        raise PartialPage("%s: %s" % (path, exc), exc.result)


def load_pages(paths, model, glucose=False, lenient=False):
    """Saved pages, given newest first (page 0, 1, ...) -> their PageResults in that order, for
    the tools that read saved pages (mm-export, mm-report).  Errors as ``_decode``'s."""
    import types
    args = types.SimpleNamespace(model=model, glucose=glucose, lenient=lenient)
    return [_decode(path, args) for path in paths]


def _ordered(result, page_order):
    return result.raw_order if page_order else result.records


def list_history_main(argv=None):
    parser = Parser(
        prog="list_history.py",
        description="Decode pump history pages (ReadHistoryData, 1024 bytes) or, with --glucose, "
                    "glucose pages. Records are listed newest first by timestamp.")
    _model_arg(parser)
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", dest="fmt", action="store_const", const="json",
                     help="one JSON list of decocare-shaped records on stdout")
    out.add_argument("--markdown", dest="fmt", action="store_const", const="markdown",
                     help="each record with its bytes (default)")
    out.add_argument("--summary", dest="fmt", action="store_const", const="summary",
                     help="per page: records, unknown records, unaccounted bytes, CRC; "
                          "then one coverage line")
    parser.add_argument("--lenient", action="store_true",
                        help="decode pages whose CRC fails or that are truncated or stop at an "
                             "unknown record, and mark them (default: exit 3 for such a page)")
    parser.add_argument("--page-order", action="store_true",
                        help="list records in the order they are written in the page "
                             "(oldest first) instead of newest first by timestamp")
    parser.add_argument("--glucose", action="store_true", help="the files are glucose (CGM) pages")
    parser.add_argument("pages", nargs="+", metavar="PAGE", help="page file(s)")
    args = parser.parse_args(argv)
    if args.glucose and args.model:
        history.as_model(args.model)
    elif not args.glucose:
        _need_model(args, parser)
    fmt = args.fmt or "markdown"
    if fmt == "summary":
        return _summary(args)
    results = [(path, _decode(path, args)) for path in args.pages]
    if fmt == "json":
        if args.page_order or len(results) == 1:
            merged = [r for _, result in results for r in _ordered(result, args.page_order)]
        elif args.glucose:
            merged = sorted((r for _, result in results for r in result.records),
                            key=lambda r: r.get("date", ""), reverse=True)
        else:   # pages given newest first (page 0, 1, ...): one time-ordered list
            merged = history.merge(result for _, result in results)
        json.dump(merged, sys.stdout, indent=2)
        print()
    else:
        for path, result in results:
            print(markdown(path, result, args.page_order))
    return 0


def markdown(path, result, page_order=False):
    """decocare analysis-file look: a heading per record, its bytes, its decoded fields."""
    lines = ["# %s" % path, "", _page_line(result), ""]
    by_id = {id(e["record"]): e for e in result.entries}
    for rec in _ordered(result, page_order):
        for one in [rec] + rec.get("appended", []):
            entry = by_id[id(one)]
            lines += _md_record(one, entry["offset"], entry["bytes"])
    for u in result.unknown:
        lines += ["## UNKNOWN at offset %d (0x%03x): %s" % (u["offset"], u["offset"], u["reason"]),
                  "", "```", hexdump(bytes.fromhex(u["hex"])), "```", ""]
    return "\n".join(lines)


def _md_record(rec, offset, raw):
    title = rec.get("_description") or "%s %s" % (rec["name"], rec.get("date", "(no date)"))
    fields = {k: v for k, v in rec.items()
              if k not in ("_description", "_head", "_date", "_body", "appended", "raw")}
    return ["## %s" % title, "", "offset %d (0x%03x)" % (offset, offset),
            "", "```", hexdump(raw), "```", "", "```json", json.dumps(fields, indent=2), "```", ""]


def _page_line(result):
    crc = {True: "CRC ok", False: "CRC FAILED", None: "no CRC"}[result.crc_ok]
    state = "complete" if result.complete else "PARTIAL (%s)" % result.problem()
    return "%d records, %d unknown, %d unaccounted bytes, %s, %s" % (
        len(result.entries), len(result.unknown), result.unaccounted, crc, state)


def _summary(args):
    """Per page one stdout line and the coverage line; a file that is no page also gets one
    stderr line and exit 2, an incomplete page (without --lenient) one stderr line and exit 3."""
    totals = [0, 0, 0, 0, 0]     # records, unknown, unaccounted, complete, pages
    not_pages = 0
    for path in args.pages:
        totals[4] += 1
        data = _read(path)
        try:
            if args.glucose:
                result = cgm.decode_page(data, args.model, lenient=True)
            else:
                result = history.decode_page(data, args.model, lenient=True)
        except NotAPage as exc:
            print("%s: not a page: %s" % (path, exc))
            print("list_history.py: %s: not a page: %s" % (path, exc), file=sys.stderr)
            not_pages += 1
            totals[2] += len(data)
            continue
        print("%s: %s" % (path, _page_line(result)))
        if not result.complete and not args.lenient:
            print("list_history.py: %s: decoded only in part: %s" % (path, result.problem()),
                  file=sys.stderr)
        totals[0] += len(result.entries)
        totals[1] += len(result.unknown)
        totals[2] += result.unaccounted
        totals[3] += bool(result.complete)
    print("coverage: %d records, %d unknown, %d unaccounted bytes, %d/%d pages complete" % tuple(totals))
    if not_pages:
        return EXIT_USAGE
    return 0 if args.lenient or totals[3] == totals[4] else EXIT_PARTIAL


def list_opcodes_main(argv=None):
    parser = Parser(
        prog="list_opcodes.py",
        description="List the pump-history record types decocare knows (the one table in "
                    "decocare/records.py): opcode, name, length per model family, date position, "
                    "decoded fields.")
    _model_arg(parser)
    args = parser.parse_args(argv)
    model = history.as_model(args.model) if args.model else None
    sys.stdout.write(records.table_markdown(model))
    return 0


def list_dates_main(argv=None):
    parser = Parser(
        prog="list_dates.py",
        description="Print every record's date of history pages, in page order: "
                    "offset, timestamp (or 'no date'), type.")
    _model_arg(parser)
    parser.add_argument("--lenient", action="store_true",
                        help="also list pages that are truncated, fail their CRC or stop early")
    parser.add_argument("pages", nargs="+", metavar="PAGE")
    args = parser.parse_args(argv)
    _need_model(args, parser)
    for path in args.pages:
        result = _decode(path, args)
        print("# %s: %s" % (path, _page_line(result)))
        for e in result.entries:
            rec = e["record"]
            print("%4d  %-19s  %s" % (e["offset"], rec.get("timestamp", "no date"), rec["_type"]))
    return 0


def decode_page_main(argv=None):
    parser = Parser(
        prog="mm-decode-history-page.py",
        description="Decode one history page to decocare-shaped JSON (newest first by timestamp).")
    _model_arg(parser)
    parser.add_argument("--lenient", action="store_true",
                        help="decode a truncated/CRC-failed/partial page and mark it")
    parser.add_argument("--page-order", action="store_true", help="records in page order")
    parser.add_argument("page", metavar="PAGE")
    args = parser.parse_args(argv)
    _need_model(args, parser)
    result = _decode(args.page, args)
    json.dump(_ordered(result, args.page_order), sys.stdout, indent=2)
    print()
    if not result.complete:
        print("%s: %s" % (args.page, _page_line(result)), file=sys.stderr)
    return 0

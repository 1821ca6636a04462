"""mm-pages.py, mm-history.py, mm-glucose.py: pump history and glucose pages to JSON.

Each page is read with its CRC16 checked (a corrupt page is read again, then the tool fails)
and decoded for the pump's model.  A page that decodes only in part (an unknown record, a bad
CRC from --lenient reading of saved pages) is still printed; the tool then exits 3 with one line
per such page on stderr, because records past the problem are missing.
"""
from . import options, pumpcli

MM_PAGES = """mm-pages.py: history pages FIRST..LAST (default: page 0 only) as one JSON list of
records, newest first in time order across the pages (decocare's record shape).

  mm-pages.py --serial 208850 0 2 --save logs/
  mm-pages.py --serial 208850 0 2 --by-page

--by-page prints one JSON object per page instead: page, crc_ok, complete, problem, records
(that page's records, newest first).
"""

MM_HISTORY = """mm-history.py: the pump's whole history (every page it keeps) as one JSON list of
records, newest first (decocare's record shape: _type, timestamp, decoded fields, raw hex).

  mm-history.py --serial 208850 > history.json
"""

MM_GLUCOSE = """mm-glucose.py: glucose (CGM) pages as one JSON list of records, newest first
(decocare's cgm shape: name, date, sgv ...).  CGM pumps only (522/722 and later).

  mm-glucose.py --serial 208850 --pages 2
"""


def _options(p):
    p.add_argument("--save", metavar="DIR",
                   help="also write each raw page to DIR/ReadHistoryData-page-N.data "
                        "(ReadGlucoseHistory-page-N.data)")


def _parse(p, argv):
    args = options.parse(p, argv)
    options.writable_dir(args.save, "--save")
    return args


def read_pages(pump, kind, numbers, save=None):
    """[(number, decoded page)] for page ``numbers``, saving the raw pages when asked."""
    read = pump.glucose_page if kind == "glucose" else pump.history_page
    out = []
    for number in numbers:
        data = read(number)
        pumpcli.save_page(save, kind, number, data)
        out.append((number, pumpcli.decode(kind, data, pump.model)))
    return out


def _problems(pages):
    return [(number, result.problem()) for number, result in pages if not result.complete]


def pages_main(argv=None):
    p = options.parser("mm-pages.py", MM_PAGES)
    p.add_argument("first", nargs="?", type=_page_arg, default=0, help="first page (default 0, the newest)")
    p.add_argument("last", nargs="?", type=_page_arg, help="last page (default: FIRST)")
    p.add_argument("--by-page", action="store_true",
                   help="one JSON object per page (page, crc_ok, complete, problem, records)")
    _options(p)
    args = _parse(p, argv)
    last = args.first if args.last is None else args.last
    if last < args.first:
        p.error("pages must satisfy 0 <= FIRST <= LAST")
    with options.open_args(args) as pump:
        pages = read_pages(pump, "history", range(args.first, last + 1), args.save)
    if args.by_page:
        pumpcli.dump([pumpcli.page_json(number, result) for number, result in pages])
    else:
        pumpcli.dump(_merged(pages))
    return pumpcli.partial_exit(p.prog, _problems(pages))


def _merged(pages):
    from .. import history
    return history.merge(result for _, result in pages)


def history_main(argv=None):
    p = options.parser("mm-history.py", MM_HISTORY)
    _options(p)
    args = _parse(p, argv)
    with options.open_args(args) as pump:
        pages = read_pages(pump, "history", range(pump.page_count()), args.save)
    pumpcli.dump(_merged(pages))
    return pumpcli.partial_exit(p.prog, _problems(pages))


def glucose_main(argv=None):
    p = options.parser("mm-glucose.py", MM_GLUCOSE)
    p.add_argument("--pages", type=lambda t: options.bounded_int(t, 1, 10 ** 6, "--pages"), metavar="N",
                   help="only the N newest glucose pages (default: all)")
    _options(p)
    args = _parse(p, argv)
    with options.open_args(args) as pump:
        cursor = pump.read("ReadCurGlucosePageNumber")
        count = cursor["glucose"] if args.pages is None else min(args.pages, cursor["glucose"])
        newest = cursor["page"]
        pages = read_pages(pump, "glucose", range(newest, max(newest - count, -1), -1), args.save)
    pumpcli.dump([rec for _, result in pages for rec in result.records])
    return pumpcli.partial_exit(p.prog, _problems(pages))


def _page_arg(text):
    return options.bounded_int(text, 0, 255, "page")

"""mm-latest.py: the pump's state now and its history of the last MINUTES, as one JSON object.

  mm-latest.py --serial 208850 30
  mm-latest.py --serial 208850 --since-id AbCdEf...== 1440     (a loop: only what is new)

Reads the clock, settings, status, battery, reservoir and temp basal, then history pages from
page 0 (the newest) only as far as needed: it stops at the first record older than the cutoff
(pump clock minus MINUTES) or at the record whose id is --since-id, so a loop that passes the
newest id it has seen reads one page when nothing is new.  Daily-total records are stamped
00:00 of the day after the one they sum up, when the pump writes them.  If the pump clock was set back, records written after that may carry older times than records
before it; like decocare's, the cutoff then stops early (a long MINUTES with --since-id reads
across it).  Every record carries ``id``, the
base64 of its bytes.  ``history`` is newest first and excludes the --since-id record itself.

Exit 3 (after printing the JSON) when a page could be decoded only in part: records past the
problem are missing, and "problems" says where.
"""
import datetime

from . import options, pumpcli

MAX_MINUTES = 100 * 366 * 24 * 60    # older than any pump history; bounded so no date overflows
STATE = (("clock", "ReadRTC"), ("settings", "ReadSettings"), ("status", "ReadPumpStatus"),
         ("battery", "ReadBatteryStatus"), ("reservoir", "ReadRemainingInsulin"),
         ("temp_basal", "ReadBasalTemp"))


def recent(pump, cutoff, since_id=None):
    """History records newer than ``cutoff`` (and newer than the record ``since_id``), newest
    first in one time-ordered list across the pages read, reading pages from 0 until one holds
    the cutoff or the since-id record.  Returns (records, pages read, why it stopped,
    [(page, problem)])."""
    from .. import history
    results, problems = [], []
    last = None
    page = 0
    while True:
        result = history.decode_page(pump.history_page(page), pump.model, lenient=True)
        results.append(result)
        if not result.complete:
            problems.append((page, result.problem()))
        stopped = None
        for rec in result.records:
            rec["id"] = pumpcli.record_id(rec)
            if since_id and rec["id"] == since_id:
                stopped = "since-id"
                break
            when = rec.get("timestamp")
            if when and datetime.datetime.fromisoformat(when) < cutoff:
                stopped = "cutoff"
                break
        if stopped is None:
            if last is None:
                last = pump.page_count() - 1    # asked only when page 0 was not enough
            if page >= last:
                stopped = "end of history"
        if stopped:
            return _newer(history.merge(results), cutoff, since_id), page + 1, stopped, problems
        page += 1


def _newer(records, cutoff, since_id):
    """The prefix of a newest-first list before the since-id record / the first older record."""
    out = []
    for rec in records:
        if since_id and rec["id"] == since_id:
            break
        when = rec.get("timestamp")
        if when and datetime.datetime.fromisoformat(when) < cutoff:
            break
        out.append(rec)
    return out


def _state(pump):
    """The STATE reads the model has (an x12 has no ReadPumpStatus: the key is left out)."""
    from ..commands import supported
    return {key: pump.read(name) for key, name in STATE if supported(name, pump.model)}


def main(argv=None):
    p = options.parser("mm-latest.py", __doc__)
    p.add_argument("minutes", nargs="?", default=30, help="how far back (default 30; at most 100 years)",
                   type=lambda t: options.bounded_int(t, 0, MAX_MINUTES, "MINUTES"))
    p.add_argument("--since-id", metavar="ID", help="stop at this record (its \"id\" from an earlier run)")
    args = options.parse(p, argv)
    with options.open_args(args) as pump:
        out = _state(pump)
        out.update(model=str(pump.model), serial=args.serial)
        cutoff = datetime.datetime.fromisoformat(out["clock"]) - datetime.timedelta(minutes=args.minutes)
        records, pages, stopped, problems = recent(pump, cutoff, args.since_id)
    out.update(cutoff=cutoff.isoformat(), history=records, pages_read=pages, stopped_at=stopped,
               problems=[{"page": n, "problem": why} for n, why in problems])
    pumpcli.dump(out)
    return pumpcli.partial_exit("mm-latest.py", problems)

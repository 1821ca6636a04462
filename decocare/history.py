"""Pump history pages (ReadHistoryData): walk, decode, shape as decocare JSON, and encode.

Why this exists: decocare 0.0.31 lost records silently when it met an opcode it did not know,
and a closed loop overdosed on the result (oref0 PR#702). Here every byte is either part of a
named record or reported: an unknown opcode stops the page with its offset and the page is
*partial*; strict callers get ``PartialPage`` with what was decoded attached.

Records come out in decocare's JSON shape (spec ecosystem.md §3a), newest first **by
timestamp** (stable for equal times): x23 pumps write the square half of a dual wave before its
normal half with a later time, and oref0 drops any record listed after an older one.

Public API (the emulator builds history with the encoders):

- ``decode_page(data, model, lenient=False) -> PageResult``
- ``encode_record(name, model, timestamp=None, **fields) -> bytes``
- ``build_pages(records, model) -> list[bytes]`` (page 0 = newest)
"""
import datetime

from . import records as R
from .errors import BadInput, NotAPage, PartialPage
from .pages import DATA_SIZE, PAGE_SIZE, page_crc_ok, seal
from .models import Model, get_model

ONE_DAY = datetime.timedelta(days=1)

# keys of a decoded record that are not field values (accepted back by encode_record)
_META = ("_type", "_description", "_head", "_date", "_body", "appended", "timestamp",
         "valid_date", "head", "body")
# keys the decoder derives from others; encode_record accepts and ignores them
_DERIVED = {"Bolus": ("type",), "Prime": ("type",), "AlarmSensor": ("alarm_description",)}


def as_model(model):
    """Model object from a Model, '522', 522 or 'MMT-522' (UnknownModel otherwise)."""
    return model if isinstance(model, Model) else get_model(model)


class PageResult:
    """What one page decoded to.

    records       decocare-shaped dicts, newest first by timestamp (undated ones in ``appended``)
    raw_order     the same top-level dicts in page order (oldest first, as written)
    entries       every walked record: dicts {offset, length, bytes, record} in page order
    unknown       [{offset, hex, reason}] where decoding had to stop
    unaccounted   data bytes (excluding zero padding) not inside a decoded record
    crc_ok        True/False, or None when the data carries no CRC (1022 bytes or truncated)
    complete      decoded to the zero padding, CRC good (or absent on 1022 bytes), not truncated
    partial_offset  offset where decoding stopped, or None
    """

    def __init__(self, size, crc_ok, truncated):
        self.size, self.crc_ok, self.truncated = size, crc_ok, truncated
        self.records, self.raw_order, self.entries, self.unknown = [], [], [], []
        self.unaccounted = 0
        self.partial_offset = None

    @property
    def complete(self):
        return (self.crc_ok is not False and not self.truncated and not self.unknown
                and self.partial_offset is None)

    def problem(self):
        """One line saying why the page is not complete ('' when it is)."""
        why = []
        if self.crc_ok is False:
            why.append("CRC16 does not match")
        if self.truncated:
            why.append("truncated (%d of %d bytes)" % (self.size, PAGE_SIZE))
        for u in self.unknown:
            why.append("%s at offset %d (0x%03x)" % (u["reason"], u["offset"], u["offset"]))
        return "; ".join(why)


def _split(data, model):
    """Page bytes -> (data bytes to walk, crc_ok, truncated); NotAPage for impossible sizes."""
    size = len(data)
    if size == PAGE_SIZE:
        return data[:DATA_SIZE], page_crc_ok(data), False
    if size == DATA_SIZE:
        return data, None, False
    if 0 < size < DATA_SIZE:
        return data, None, True
    raise NotAPage("%d bytes: not a history page (expected %d, or %d without CRC, or fewer for a "
                   "truncated download)" % (size, PAGE_SIZE, DATA_SIZE))


def walk(data, model):
    """Cut ``data`` into records by the length table; yields (offset, RecordType, layout, bytes).

    Stops at the zero padding (all remaining bytes zero). Anything else that cannot be a record
    ends the walk with a ``("unknown", offset, reason)`` item: never guessed past.
    """
    pos, end = 0, len(data)
    while pos < end:
        op = data[pos]
        if op == 0 and not any(data[pos:]):
            return
        rtype = R.BY_OP.get(op)
        if rtype is None:
            yield ("unknown", pos, "unknown opcode 0x%02x" % op)
            return
        lay = rtype.layout(model)
        length = lay.length
        if length == "b1":
            length = data[pos + 1] if pos + 1 < end else end + 1
            if length < 2 or (length - 2) % 3:
                yield ("unknown", pos, "opcode 0x%02x with impossible length %d" % (op, length))
                return
            lay = R.Layout(length, length, None)
        if pos + length > end:
            yield ("unknown", pos, "record 0x%02x (%d bytes) runs past the end of the data"
                   % (op, length))
            return
        yield (rtype, pos, lay, bytes(data[pos:pos + length]))
        pos += length


def decode_record(rtype, lay, raw, model):
    """One record's bytes -> decocare-shaped dict (``timestamp`` absent when it has no valid date)."""
    rec = R.Rec(raw, lay.head, lay.date_len, model)
    fields = rtype.codec.decode(rec)
    when = None
    if lay.date == "ts":
        when = R.parse_ts(rec.ts)
    elif lay.date == "d2":
        day = R.parse_d2(rec.ts)
        if day is not None:
            # the pump writes a day's totals when that day ends: dated 00:00 of the next day (as
            # decocare 0.0.31, which oref0 and openaps rely on), so it sorts where it was written
            when = datetime.datetime(day.year, day.month, day.day) + ONE_DAY
            fields["valid_date"] = day.isoformat()
    out = {"_type": rtype.name}
    if when is not None:
        out["timestamp"] = when.isoformat()
        stamp = out["timestamp"]
    elif lay.date:
        stamp = str(R.ts_tuple(rec.ts)) if lay.date == "ts" else "(invalid date %s)" % rec.ts.hex()
    else:
        stamp = "unknown"
    out["_description"] = "%s %s head[%d], body[%d] op[0x%02x]" % (
        rtype.name, stamp, len(rec.head), len(rec.body), rtype.op)
    out.update(_head=rec.head.hex(), _date=rec.ts.hex(), _body=rec.body.hex())
    if when is None and fields and "data" not in fields:
        out["data"] = fields
    else:
        out.update(fields)
    return out


def decode_page(data, model, lenient=False):
    """Decode one history page for pump ``model``.

    ``data``: 1024 bytes (CRC checked), 1022 bytes (no CRC), or fewer (a truncated download).
    Raises NotAPage for sizes that cannot be a page, UnknownModel for a bad model, and, unless
    ``lenient``, PartialPage(message, result) when the CRC fails, the data is truncated or an
    unknown record stops decoding; ``result`` (a PageResult) holds everything decoded before.
    """
    model = as_model(model)
    data = bytes(data)
    body, crc_ok, truncated = _split(data, model)
    result = PageResult(len(data), crc_ok, truncated)
    for item in walk(body, model):
        if item[0] == "unknown":
            _, pos, reason = item
            rest = body[pos:].rstrip(b"\0")
            result.unknown.append({"offset": pos, "hex": rest.hex(), "reason": reason})
            result.unaccounted = len(rest)
            result.partial_offset = pos
            break
        rtype, pos, lay, raw = item
        result.entries.append({"offset": pos, "length": len(raw), "bytes": raw,
                               "record": decode_record(rtype, lay, raw, model)})
    if truncated and result.partial_offset is None:
        result.partial_offset = len(body)
    _attach(result)
    if not lenient and not result.complete:
        raise PartialPage("page decoded only in part: %s (use --lenient to see it)"
                          % result.problem(), result)
    return result


def _attach(result):
    """decocare's rule: an undated record goes into ``appended`` of the next dated record.

    Two deliberate refinements: a dated record written out of time order (an x22 square
    bolus logged when it ends) is skipped as host, so the 0x5C list stays with its own
    wizard/bolus; undated records after the page's last dated record go to that (newest)
    record instead of being dropped; a page without any dated record lists them at top level.
    """
    pending, top = [], []
    for entry in result.entries:
        rec = entry["record"]
        if "timestamp" not in rec:
            pending.append(rec)
            continue
        if pending and (not top or rec["timestamp"] >= top[-1]["timestamp"]):
            rec.setdefault("appended", []).extend(pending)
            pending = []
        top.append(rec)
    if pending:
        if top:
            top[-1].setdefault("appended", []).extend(pending)
        else:
            top.extend(pending)
    result.raw_order = top
    result.records = newest_first(top)


def newest_first(chain):
    """Top-level records in page order (oldest first; several pages: oldest page first) ->
    newest first by timestamp, stable for equal times (the later record in page order first).

    Why strictly by timestamp: oref0 and other consumers walk history newest first and skip any
    record listed after an older one, so a list that is not monotonic silently loses insulin.
    The one exception is a ChangeTime (old clock) and its NewTimeSet (new clock): they stay
    together, sorted at the earlier of their two times, so the pair stays adjacent and only its
    own later half (which carries no insulin) can stand after an older record.  Undated records
    go last.
    """
    units = []
    i = len(chain) - 1
    while i >= 0:
        rec = chain[i]
        if rec["_type"] == "NewTimeSet" and i and chain[i - 1]["_type"] == "ChangeTime":
            pair = [rec, chain[i - 1]]
            times = [t for t in (_iso(r.get("timestamp")) for r in pair) if t is not None]
            units.append((min(times) if times else None, pair))
            i -= 2
            continue
        units.append((_iso(rec.get("timestamp")), [rec]))
        i -= 1
    units.sort(key=lambda u: (u[0] is not None, u[0] or datetime.datetime.min), reverse=True)
    return [rec for _, group in units for rec in group]


def merge(results):
    """One newest-first list of the records of several pages (PageResults given newest page
    first, page 0, 1, ...), ordered across pages exactly as ``newest_first`` orders one page:
    consumers that read the list in order (oref0) must never meet a record after an older one."""
    return newest_first([rec for result in reversed(list(results)) for rec in result.raw_order])


def _iso(text):
    return datetime.datetime.fromisoformat(text) if text else None


# --------------------------------------------------------------------------------------------
# encoding


def _when(value, kind):
    if value is None or isinstance(value, datetime.datetime):
        return value
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day)
    try:
        return datetime.datetime.fromisoformat(str(value))
    except ValueError:
        raise BadInput("bad %s %r (use ISO YYYY-MM-DDTHH:MM:SS)" % (kind, value))


def encode_record(name, model, timestamp=None, **fields):
    """Bytes of one history record of type ``name`` (a ``_type`` from the table) for ``model``.

    Fields use the decoder's keys (``amount=2.5``, ``duration=30``, ``rate=0.85``, ...); a
    decoded record can be passed back whole (``**record``) and its ``_head``/``_date``/``_body``
    hex seed the bytes, so undecoded bytes survive. Raw bytes can also be given as ``head=``
    (hex of the bytes between opcode and date) and ``body=`` (hex after the date). ``timestamp``
    is a datetime or ISO text (daily totals: ``valid_date=`` the day summed up, or a ``timestamp``
    at 00:00 of the day after, when the pump writes them). Values the record
    cannot hold raise BadInput rather than being truncated.
    """
    model = as_model(model)
    rtype = R.BY_NAME.get(name)
    if rtype is None:
        raise BadInput("unknown record type %r (see list_opcodes.py)" % (name,))
    allowed = set(_META) | set(rtype.codec.keys) | set(_DERIVED.get(name, ())) | {"data"}
    extra = set(fields) - allowed
    if extra:
        raise BadInput("%s has no field(s) %s (fields: %s)" % (
            name, ", ".join(sorted(extra)), ", ".join(rtype.codec.keys) or "none"))
    if rtype.date is None and "data" not in fields and "_head" not in fields:
        fields["data"] = []
    lay = _layout_for(rtype, model, fields)
    buf = _seed(rtype, lay, fields)
    when = _when(timestamp, "timestamp")
    if rtype.date == "d2":
        # the stored date is the day summed up: ``valid_date``, else the day before ``timestamp``
        day = _when(fields.get("valid_date"), "valid_date")
        if day is None and when is not None:
            day = when - ONE_DAY
        if day is not None:
            R.put_d2(buf, lay.head, day.date())
    elif when is not None:
        if rtype.date == "ts":
            R.put_ts(buf, lay.head, when)
        else:
            raise BadInput("%s records carry no date" % name)
    values = fields.get("data") if isinstance(fields.get("data"), dict) else fields
    if "_head" in fields:   # raw bytes given: rewrite only the fields that differ from them
        now = rtype.codec.decode(R.Rec(buf, lay.head, lay.date_len, model))
        values = {k: v for k, v in values.items() if k not in now or now[k] != v}
    rtype.codec.encode(buf, values, lay, model)
    return bytes(buf)


def _layout_for(rtype, model, fields):
    lay = rtype.layout(model)
    if lay.length != "b1":
        return lay
    if "_head" in fields:
        length = len(_hexbytes(fields["_head"], "_head"))
    else:
        length = 2 + 3 * len(fields.get("data") or ())
    if length > 255:
        raise BadInput("%s holds at most 84 entries" % rtype.name)
    return R.Layout(length, length, None)


def _hexbytes(text, what):
    try:
        return bytes.fromhex(str(text))
    except ValueError:
        raise BadInput("%s is not hex: %r" % (what, text))


def _seed(rtype, lay, fields):
    """Start from raw bytes the caller gave (decoded record or head=/body=), else zeros."""
    buf = bytearray(lay.length)
    if "_head" in fields:
        raw = b"".join(_hexbytes(fields.get(k, ""), k) for k in ("_head", "_date", "_body"))
        if len(raw) != lay.length or raw[0] != rtype.op:
            raise BadInput("_head/_date/_body are %d bytes, %s needs %d starting 0x%02x"
                           % (len(raw), rtype.name, lay.length, rtype.op))
        buf[:] = raw
    for key, at, size in (("head", 1, lay.head - 1), ("body", lay.body_at, lay.length - lay.body_at)):
        if key in fields:
            raw = _hexbytes(fields[key], key)
            if len(raw) != size:
                raise BadInput("%s= must be %d bytes for %s, got %d" % (key, size, rtype.name, len(raw)))
            buf[at:at + size] = raw
    buf[0] = rtype.op
    if rtype.date is None:
        buf[1] = lay.length
    return buf


def build_pages(records, model):
    """Pack encoded records (oldest first) into 1024-byte pages, newest page first.

    Records are never split across pages; each page is zero padded to 1022 bytes and ends with
    its CRC16. An empty history gives one empty page (a pump always answers page 0).
    """
    as_model(model)
    pages, current = [], bytearray()
    for raw in records:
        raw = bytes(raw)
        if not raw or raw[0] == 0 or len(raw) > DATA_SIZE:
            raise BadInput("not an encoded record: %r" % raw[:8].hex())
        if len(current) + len(raw) > DATA_SIZE:
            pages.append(current)
            current = bytearray()
        current += raw
    pages.append(current)
    return [seal(data) for data in reversed(pages)]

"""Glucose (CGM) pages and ISIG pages (spec history.md §3), and an encoder for glucose pages.

Glucose records are written forward in time with the opcode as their LAST byte, so a page is
read backwards (bytes 1021..0). Sensor values carry no time: they are dated relative to the
SensorTimestamp (0x08) that follows them in the page, 5 minutes apart (the ecc1/MinimedKit
rule, §3.2); values newer than the newest timestamp are dated from it only when that timestamp
says so (last RF / page end), otherwise the page "needs a timestamp" and they stay undated.
As for history pages, an unknown opcode stops decoding and the page is reported partial.

API: ``decode_page(data, model=None, lenient=False) -> GlucosePage``,
``encode_record(name, timestamp=None, **fields) -> bytes``, ``build_page(records) -> bytes``,
``sgv_records(values, newest)`` and ``check_isig_page(data)``.
"""
import datetime

from .errors import BadInput, NotAPage, PartialPage
from .pages import DATA_SIZE, ISIG_SIZE, PAGE_SIZE, page_crc_ok, seal

FIVE_MIN = datetime.timedelta(minutes=5)

# op -> (name, size incl. opcode, time kind): "rel" dated from a timestamp, "abs" own date, None
_TYPES = {
    0x01: ("DataEnd", 1, None),
    0x02: ("SensorWeakSignal", 1, "rel"),
    0x03: ("SensorCal", 2, "rel"),
    0x04: ("SensorPacket", 2, "rel"),
    0x05: ("SensorError", 2, "rel"),
    0x06: ("SensorDataLow", 1, "rel"),
    0x07: ("SensorDataHigh", 2, "rel"),
    0x08: ("SensorTimestamp", 5, "abs"),
    0x0A: ("BatteryChange", 5, "abs"),
    0x0B: ("SensorStatus", 5, "abs"),
    0x0C: ("DateTimeChange", 5, "abs"),
    0x0D: ("SensorSync", 5, "abs"),
    0x0E: ("CalBGForGH", 6, "abs"),
    0x0F: ("SensorCalFactor", 7, "abs"),
    0x10: ("10-Something", 8, "abs"),
    0x11: ("Could Not Decode", 1, None),   # meaning unknown; 1 byte in decocare, ecc1, MinimedKit
    0x12: ("Could Not Decode", 1, None),
    0x13: ("19-Something", 1, None),
}
GLUCOSE = "GlucoseSensorData"   # every opcode >= 0x14: sgv = 2 x byte
_BY_NAME = {v[0]: k for k, v in _TYPES.items() if k not in (0x11, 0x12)}
_SUBTYPES = {0x08: ("timestamp_type", ("last_rf", "page_end", "gap", "unknown")),
             0x0B: ("status_type", ("off", "on", "lost", "unknown")),
             0x0D: ("sync_type", ("find", "new", "old", "find"))}
_CAL = ("meter_bg_now", "waiting", "cal_error")


def _parse(ts):
    """[hour, minute, day, year] bytes (reversed order) -> datetime or None."""
    h, m, d, y = ts
    try:
        return datetime.datetime(2000 + (y & 0x7F), ((h >> 6) << 2) | (m >> 6), d & 0x1F,
                                 h & 0x1F, m & 0x3F)
    except ValueError:
        return None


def _put(when, subtype=0, flags=0):
    """datetime -> [hour, minute, day, year] with the subtype in day bits 5-6."""
    if not 2000 <= when.year <= 2127:
        raise BadInput("year %d cannot be stored in a glucose timestamp" % when.year)
    return bytes([when.hour | ((when.month >> 2) << 6), when.minute | ((when.month & 3) << 6),
                  when.day | ((subtype & 3) << 5) | flags, when.year - 2000])


class GlucosePage:
    """Result of ``decode_page``; the same attributes as history.PageResult, plus
    ``needs_timestamp`` (values newer than the newest timestamp could not be dated)."""

    def __init__(self, size, crc_ok, truncated):
        self.size, self.crc_ok, self.truncated = size, crc_ok, truncated
        self.records, self.raw_order, self.entries, self.unknown = [], [], [], []
        self.unaccounted = 0
        self.partial_offset = None
        self.needs_timestamp = False

    complete = property(lambda self: self.crc_ok is not False and not self.truncated
                        and not self.unknown)

    def problem(self):
        why = ["CRC16 does not match"] if self.crc_ok is False else []
        if self.truncated:
            why.append("truncated (%d of %d bytes)" % (self.size, PAGE_SIZE))
        why += ["%s at offset %d" % (u["reason"], u["offset"]) for u in self.unknown]
        return "; ".join(why)


def _records(data):
    """Walk the page backwards; yields (offset, op, payload-reversed) or ("unknown", offset, why)."""
    rev = data[::-1]
    pos = len(rev) - len(rev.lstrip(b"\0"))
    while pos < len(rev):
        op = rev[pos]
        offset = len(data) - 1 - pos
        if op >= 0x14:
            size = 1
        elif op in _TYPES:
            size = _TYPES[op][1]
        else:
            yield ("unknown", offset, "unknown glucose opcode 0x%02x" % op)
            return
        if pos + size > len(rev):
            yield ("unknown", offset, "record 0x%02x (%d bytes) runs past the start of the page"
                   % (op, size))
            return
        yield (offset - size + 1, op, rev[pos + 1:pos + size])
        pos += size


def _fields(op, payload):
    if op >= 0x14:
        return GLUCOSE, {"sgv": 2 * op}
    name, size, kind = _TYPES[op]
    out = {}
    if kind == "abs":
        out["date"] = _parse(payload[:4])
        d = payload[2]
        if op in _SUBTYPES:
            key, names = _SUBTYPES[op]
            out[key] = names[(d >> 5) & 3]
        if op == 0x0E:
            out["amount"] = ((d & 0x20) << 3) | payload[4]
        elif op == 0x0F:
            out["factor"] = int.from_bytes(payload[4:6], "big") / 1000
        if size > 5 and op != 0x0E:
            out["body"] = payload[4:].hex()
    elif op == 0x03:
        out["waiting"] = _CAL[payload[0]] if payload[0] < len(_CAL) else payload[0]
    elif op == 0x06:
        out["sgv"] = 40
    elif op == 0x07:
        out["sgv"] = 400
    elif op in (0x04, 0x05):
        out["value"] = payload[0]
    return name, out


def decode_page(data, model=None, lenient=False):
    """Decode a 1024-byte glucose page (1022 without CRC); records newest first by date.

    ``model`` is accepted for symmetry with history (the format does not depend on it).
    Raises NotAPage for impossible sizes, PartialPage (with ``.result``) unless ``lenient``
    when the CRC fails, the data is truncated or an unknown opcode stops decoding.
    """
    data = bytes(data)
    if len(data) == PAGE_SIZE:
        body, crc_ok, truncated = data[:DATA_SIZE], page_crc_ok(data), False
    elif len(data) == DATA_SIZE:
        body, crc_ok, truncated = data, None, False
    elif 0 < len(data) < DATA_SIZE:
        body, crc_ok, truncated = data, None, True
    else:
        raise NotAPage("%d bytes: not a glucose page (expected %d)" % (len(data), PAGE_SIZE))
    result = GlucosePage(len(data), crc_ok, truncated)
    newest_first = []
    for item in _records(body):
        if item[0] == "unknown":
            _, offset, reason = item
            rest = body[:offset + 1].lstrip(b"\0")
            result.unknown.append({"offset": offset, "hex": rest.hex(), "reason": reason})
            result.unaccounted = len(rest)
            result.partial_offset = offset
            break
        offset, op, payload = item
        name, fields = _fields(op, payload)
        kind = "rel" if op >= 0x14 else _TYPES[op][2]
        newest_first.append((offset, op, payload, name, kind, fields))
    _date(newest_first, result)
    if not lenient and not result.complete:
        raise PartialPage("glucose page decoded only in part: %s (use --lenient to see it)"
                          % result.problem(), result)
    return result


def _anchor(items):
    """Reference time for relative records newer than the newest timestamp (spec §3.2)."""
    n = 0
    for _, op, _, _, kind, fields in items:
        if op == 0x08:
            if fields["date"] is None:
                return None if n else False
            if n == 0 or fields["timestamp_type"] in ("last_rf", "page_end"):
                return fields["date"] + n * FIVE_MIN
            return None
        if kind == "rel":
            n += 1
        elif kind == "abs":
            return None if n else False
    return None if n else False


def _date(items, result):
    t = _anchor(items)
    if t is None:
        result.needs_timestamp = True
    for offset, op, payload, name, kind, fields in items:
        rec = {"name": name, "op": op if op >= 0x14 else "0x%02x" % op,
               "packet_size": len(payload), "raw": payload.hex()}
        when = fields.pop("date", None)
        if op == 0x08:
            t = when
        if kind == "rel" and t:
            when = t
            t -= FIVE_MIN
        rec["date_type"] = {"rel": "prevTimestamp", "abs": "minSpecific", None: "none"}[kind]
        if when is not None:
            rec["date"] = when.isoformat()
        rec.update(fields)
        result.entries.append({"offset": offset, "length": len(payload) + 1,
                               "bytes": bytes(reversed(payload)) + bytes([op]), "record": rec})
    result.entries.reverse()
    result.raw_order = [e["record"] for e in result.entries]
    result.records = sorted((e["record"] for e in reversed(result.entries)),
                            key=lambda r: r.get("date", ""), reverse=True)


# --------------------------------------------------------------------------------------------
# encoding (forward page order: what the pump writes)


def encode_record(name, timestamp=None, **fields):
    """Bytes of one glucose record as they sit in the page (opcode last).

    ``GlucoseSensorData`` takes ``sgv`` (even, 40..510 mg/dL); timestamped records take
    ``timestamp`` (datetime or ISO) and their subtype key (``timestamp_type`` last_rf/page_end/
    gap, ``status_type``, ``sync_type``); CalBGForGH ``amount``; SensorCalFactor ``factor``;
    SensorCal ``waiting``; SensorPacket/SensorError ``value``; 10-Something ``body`` (3 bytes hex).
    """
    if name == GLUCOSE:
        sgv = int(fields.get("sgv", 0))
        if sgv % 2 or not 40 <= sgv <= 510:
            raise BadInput("sgv %r: the page stores even values 40..510 mg/dL" % fields.get("sgv"))
        return bytes([sgv // 2])
    op = _BY_NAME.get(name)
    if op is None:
        raise BadInput("unknown glucose record type %r" % (name,))
    _, size, kind = _TYPES[op]
    payload = bytearray(size - 1)
    if kind == "abs":
        if timestamp is None:
            raise BadInput("%s needs a timestamp" % name)
        when = timestamp if isinstance(timestamp, datetime.datetime) else \
            datetime.datetime.fromisoformat(str(timestamp))
        subtype = 0
        if op in _SUBTYPES:
            key, names = _SUBTYPES[op]
            subtype = names.index(fields.get(key, names[0]))
        amount = int(fields.get("amount", 0))
        payload[:4] = _put(when, subtype, (amount >> 3) & 0x20 if op == 0x0E else 0)
        if op == 0x0E:
            if not 0 <= amount < 512:
                raise BadInput("CalBGForGH amount %r out of 0..511" % amount)
            payload[4] = amount & 0xFF
        elif op == 0x0F:
            payload[4:6] = round(float(fields.get("factor", 0)) * 1000).to_bytes(2, "big")
        elif op == 0x10 and "body" in fields:
            payload[4:] = bytes.fromhex(fields["body"])
    elif op == 0x03:
        waiting = fields.get("waiting", _CAL[0])
        payload[0] = _CAL.index(waiting) if waiting in _CAL else int(waiting)
    elif op in (0x04, 0x05):
        payload[0] = int(fields.get("value", 0))
    elif op == 0x07:
        payload[0] = 0
    return bytes(reversed(payload)) + bytes([op])


def sgv_records(values, newest):
    """Sensor values (oldest first) 5 minutes apart, the newest at ``newest``: the records
    plus the SensorTimestamp (last_rf) that dates them, ready for ``build_page``."""
    return [encode_record(GLUCOSE, sgv=v) for v in values] + [
        encode_record("SensorTimestamp", newest, timestamp_type="last_rf")]


def build_page(records):
    """Pack glucose records (oldest first, forward bytes) into one 1024-byte page with CRC16."""
    data = b"".join(bytes(r) for r in records)
    if len(data) > DATA_SIZE:
        raise BadInput("%d bytes of glucose records do not fit in one page (%d)" % (len(data), DATA_SIZE))
    return seal(data)


def check_isig_page(data):
    """ISIG pages are kept as data (nobody decodes them): check size and CRC16, return crc_ok."""
    data = bytes(data)
    if len(data) != ISIG_SIZE:
        raise NotAPage("%d bytes: not an ISIG page (expected %d)" % (len(data), ISIG_SIZE))
    return page_crc_ok(data)

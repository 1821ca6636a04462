"""The one table of pump-history record types (spec history.md §2, lengths per §4.1).

Every consumer derives from ``TABLE``: the page walker (lengths, timestamp position), the field
decoders and encoders, the markdown listing, ``list_opcodes.py`` and ``docs/records.md``.
A wrong length desynchronises a whole page, so lengths follow the ecc1 table that walks the
real pages cleanly, plus 0x27 = 7 and 0xA8 = 15 from decocare (never seen).

Each entry knows its layout per model family: total length (or "b1" when byte 1 is the length,
0x5C/0x30), head length (bytes before the date), date kind ("ts" 5-byte timestamp, "d2" 2-byte
date, None) and a field codec: ``decode(rec) -> dict`` and ``encode(buf, fields, model)``.
"""
import datetime

from .errors import BadInput
from .vocabulary import PATTERN_RECORD_NAMES

# --------------------------------------------------------------------------------------------
# dates


def parse_ts(t):
    """5-byte timestamp (spec §1.3) -> datetime, or None when the bits do not form a date."""
    try:
        return datetime.datetime(2000 + (t[4] & 0x7F), ((t[0] >> 6) << 2) | (t[1] >> 6),
                                 t[3] & 0x1F, t[2] & 0x1F, t[1] & 0x3F, t[0] & 0x3F)
    except ValueError:
        return None


def ts_tuple(t):
    """The raw (year, month, day, hour, minute, second) of an invalid timestamp, as decocare prints it."""
    return (2000 + (t[4] & 0x7F), ((t[0] >> 6) << 2) | (t[1] >> 6), t[3] & 0x1F,
            t[2] & 0x1F, t[1] & 0x3F, t[0] & 0x3F)


def put_ts(buf, off, when):
    """Write a 5-byte timestamp at ``off``, keeping the spare bits (t2/t3 bits 5-7, t4 bit 7)."""
    if not 2000 <= when.year <= 2127:
        raise BadInput("year %d cannot be stored in a pump timestamp (2000..2127)" % when.year)
    buf[off] = (when.second & 0x3F) | ((when.month >> 2) << 6)
    buf[off + 1] = (when.minute & 0x3F) | ((when.month & 3) << 6)
    buf[off + 2] = (buf[off + 2] & 0xE0) | when.hour
    buf[off + 3] = (buf[off + 3] & 0xE0) | when.day
    buf[off + 4] = (buf[off + 4] & 0x80) | (when.year - 2000)


def parse_d2(d):
    """2-byte date of the daily totals (spec §1.4) -> date, or None."""
    try:
        return datetime.date(2000 + (d[1] & 0x7F), ((d[0] >> 5) << 1) | (d[1] >> 7), d[0] & 0x1F)
    except ValueError:
        return None


def put_d2(buf, off, day):
    if not 2000 <= day.year <= 2127:
        raise BadInput("year %d cannot be stored in a pump date (2000..2127)" % day.year)
    buf[off] = day.day | ((day.month >> 1) << 5)
    buf[off + 1] = (day.year - 2000) | ((day.month & 1) << 7)


# --------------------------------------------------------------------------------------------
# small value helpers


def _put(buf, pos, value, nbytes=1, order="big"):
    """Store an unsigned integer, refusing what does not fit: a wrong byte is a wrong dose."""
    value = int(value)
    if not 0 <= value < (1 << (8 * nbytes)):
        raise BadInput("value %r does not fit in %d byte(s) at offset %d" % (value, nbytes, pos))
    buf[pos:pos + nbytes] = value.to_bytes(nbytes, order)


def _scaled(value, scale):
    """Units -> integer count (strokes, tenths); refuses values off the pump's grid."""
    count = round(float(value) * scale)
    if abs(count - float(value) * scale) > 1e-6:
        raise BadInput("%r is not a multiple of 1/%d" % (value, scale))
    return count


def _ranged(value, limit, what, low=0):
    """``value`` as an int in low..limit-1, else BadInput: never store a truncated value."""
    value = int(value)
    if not low <= value < limit:
        raise BadInput("%s %r out of range %d..%d" % (what, value, low, limit - 1))
    return value


def _be(b):
    return int.from_bytes(bytes(b), "big")


def _signed(v, bits):
    """Two's complement of a ``bits``-wide field (wizard corrections can be negative)."""
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


class Rec:
    """A record's bytes split for the field decoders: ``b`` whole record, ``ts`` date bytes, ``body``."""
    __slots__ = ("b", "head", "ts", "body", "model")

    def __init__(self, b, head_len, date_len, model):
        self.b = b
        self.head = b[:head_len]
        self.ts = b[head_len:head_len + date_len]
        self.body = b[head_len + date_len:]
        self.model = model


class Layout:
    """Where things are in one record for one family."""
    __slots__ = ("length", "head", "date")

    def __init__(self, length, head, date):
        self.length, self.head, self.date = length, head, date

    @property
    def date_len(self):
        return {"ts": 5, "d2": 2, None: 0}[self.date]

    @property
    def body_at(self):
        return self.head + self.date_len


# --------------------------------------------------------------------------------------------
# field codecs: each is (decode(rec) -> dict, encode(buf, fields, layout, model))


class Codec:
    """decode/encode pair plus the keys it owns (for docs and for round-trip checks)."""

    def __init__(self, keys, decode, encode, doc=""):
        self.keys, self.decode, self.encode, self.doc = tuple(keys), decode, encode, doc


NO_FIELDS = Codec((), lambda r: {}, lambda buf, f, lay, m: None)


def b1(key, dec, enc, doc):
    """A field held in byte 1 (the byte after the opcode)."""
    def encode(buf, f, lay, m):
        if key in f:
            _put(buf, 1, enc(f[key]))
    return Codec((key,), lambda r: {key: dec(r.b[1])}, encode, doc)


def flag(key="enabled", on=lambda v: v != 0):
    return b1(key, lambda v: bool(on(v)), lambda x: 1 if x else 0, "%s = byte 1 set" % key)


def choice(key, names, doc):
    """Byte 1 as a name (unknown values stay integers so nothing is lost)."""
    rev = {n: i for i, n in enumerate(names)}
    return b1(key, lambda v: names[v] if v < len(names) else v,
              lambda x: rev[x] if x in rev else int(x), doc)


def scaled_b1(key, scale, doc):
    return b1(key, lambda v: v / scale, lambda x: _scaled(x, scale), doc)


def _bolus():
    def dec(r):
        if r.model.larger:
            b = r.b
            out = {"amount": _be(b[3:5]) / 40, "programmed": _be(b[1:3]) / 40,
                   "unabsorbed": _be(b[5:7]) / 40, "duration": b[7] * 30}
        else:
            b = r.b
            out = {"amount": b[2] / 10, "programmed": b[1] / 10, "duration": b[3] * 30}
        out["type"] = "square" if out["duration"] > 0 else "normal"
        return out

    def enc(buf, f, lay, m):
        if m.larger:
            spots = (("programmed", 1, 2), ("amount", 3, 2), ("unabsorbed", 5, 2))
            scale, dpos = 40, 7
        else:
            spots, scale, dpos = (("programmed", 1, 1), ("amount", 2, 1)), 10, 3
        for key, pos, n in spots:
            if key in f:
                _put(buf, pos, _scaled(f[key], scale), n)
        if "duration" in f:
            _put(buf, dpos, _scaled(f["duration"], 1 / 30))
    return Codec(("amount", "programmed", "unabsorbed", "duration", "type"), dec, enc,
                 "x22-: programmed b1, amount b2 (0.1 U), duration b3x30 min; x23+: BE 1/40 U "
                 "programmed b1-2, amount b3-4, unabsorbed b5-6, duration b7x30 min; "
                 "type square when duration > 0")


def _prime():
    def dec(r):
        fixed = r.b[2] / 10
        return {"type": "manual" if r.b[2] == 0 else "fixed", "amount": r.b[4] / 10, "fixed": fixed}

    def enc(buf, f, lay, m):
        if "fixed" in f:
            _put(buf, 2, _scaled(f["fixed"], 10))
        if "amount" in f:
            _put(buf, 4, _scaled(f["amount"], 10))
    return Codec(("type", "amount", "fixed"), dec, enc,
                 "fixed = b2 x0.1 U (0: manual prime), amount = b4 x0.1 U")


def _daily_total():
    def dec(r):
        return {"amount": _be(r.b[3:5]) / 40}

    def enc(buf, f, lay, m):
        if "amount" in f:
            _put(buf, 3, _scaled(f["amount"], 40), 2)
    return Codec(("amount",), dec, enc, "amount = BE b3..4 x0.025 U (every family)")


def _basal_profile():
    def dec(r):
        out = []
        body = r.body
        for i in range(0, 144, 3):
            start, lo, hi = body[i:i + 3]
            if start == 0x3F or (start, lo, hi) == (0, 0, 0):
                break
            out.append({"offset": start * 1800000, "rate": (lo | hi << 8) / 40,
                        "start": "%02d:%02d:00" % (start // 2, 30 * (start % 2))})
        return {"profile": out}

    def enc(buf, f, lay, m):
        entries = f.get("profile")
        if entries is None:
            return
        if len(entries) > 48:
            raise BadInput("a basal profile has at most 48 entries")
        at = lay.body_at
        for i, e in enumerate(entries):
            start = e["offset"] // 1800000
            _put(buf, at + 3 * i, start)
            _put(buf, at + 3 * i + 1, _scaled(e["rate"], 40), 2, "little")
        end = at + 3 * len(entries)
        if len(entries) < 48 and buf[end] != 0x3F:     # keep an existing 0x3F terminator
            buf[end:end + 3] = b"\0\0\0"
    return Codec(("profile",), dec, enc,
                 "profile = up to 48 entries [start half-hours, rate LE16 x0.025 U/h], ending at "
                 "start 0x3F or 00 00 00; offset in ms from midnight like decocare")


def _cal_bg():
    def dec(r):
        return {"amount": ((r.ts[2] & 0x80) << 2) | ((r.ts[4] & 0x80) << 1) | r.b[1]}

    def enc(buf, f, lay, m):
        if "amount" in f:
            v = _ranged(f["amount"], 1024, "CalBGForPH amount")
            buf[1] = v & 0xFF
            buf[4] = (buf[4] & 0x7F) | ((v >> 2) & 0x80)
            buf[6] = (buf[6] & 0x7F) | ((v >> 1) & 0x80)
    return Codec(("amount",), dec, enc, "amount (mg/dL, 10 bits) = t2 bit7 <<2 | t4 bit7 <<1 | b1")


SENSOR_ALARMS = {101: "High Glucose", 102: "Low Glucose", 104: "Meter BG Now",
                 105: "Cal Reminder", 106: "Calibration Error", 107: "Sensor End",
                 112: "Weak Signal", 113: "Lost Sensor", 115: "Low Glucose Predicted"}


def _sensor_alarm():
    def dec(r):
        t = r.b[1]
        out = {"alarm_type": t,
               "alarm_description": SENSOR_ALARMS.get(t, "Unknown sensor alarm (%d)" % t)}
        if t in (101, 102):
            out["amount"] = ((r.ts[4] & 0x80) << 1) | r.b[2]
        return out

    def enc(buf, f, lay, m):
        if "alarm_type" in f:
            _put(buf, 1, f["alarm_type"])
        if "amount" in f:
            v = _ranged(f["amount"], 512, "AlarmSensor amount")
            buf[2] = v & 0xFF
            buf[7] = (buf[7] & 0x7F) | ((v >> 1) & 0x80)
    return Codec(("alarm_type", "alarm_description", "amount"), dec, enc,
                 "alarm_type = b1; amount (high/low alarms 101/102) = b2 | t4 bit7 <<1")


def _temp_basal():
    def dec(r):
        kind = r.body[0]
        if kind & 0x08:
            return {"temp": "percent", "rate": r.b[1]}
        return {"temp": "absolute", "rate": (((kind & 7) << 8) | r.b[1]) / 40}

    def enc(buf, f, lay, m):
        at = lay.body_at
        if "temp" in f:
            buf[at] = (buf[at] & 0xF0) | (0x08 if f["temp"] == "percent" else 0)
        if "rate" not in f:
            return
        if buf[at] & 0x08:
            _put(buf, 1, f["rate"])
        else:
            v = _ranged(_scaled(f["rate"], 40), 1 << 11, "temp basal rate")
            buf[1] = v & 0xFF
            buf[at] = (buf[at] & 0xF8) | (v >> 8)
    return Codec(("temp", "rate"), dec, enc,
                 "body[0] bit 3: percent (rate = b1 %) else absolute "
                 "(rate = ((body[0]&7)<<8 | b1) x0.025 U/h)")


def _bg_received():
    def dec(r):
        return {"link": bytes(r.body[:3]).hex(), "amount": (r.b[1] << 3) | (r.ts[2] >> 5)}

    def enc(buf, f, lay, m):
        if "amount" in f:
            v = _ranged(f["amount"], 2048, "BGReceived amount")
            buf[1] = v >> 3
            buf[4] = (buf[4] & 0x1F) | ((v & 7) << 5)
        if "link" in f:
            buf[lay.body_at:lay.body_at + 3] = _hex(f["link"], 3)
    return Codec(("link", "amount"), dec, enc,
                 "amount (mg/dL) = b1<<3 | t2>>5; link = meter id (3 body bytes, hex)")


def _links():
    spots = (1, 4, 8)

    def dec(r):
        return {"links": [bytes(r.body[p:p + 3]).hex() for p in spots]}

    def enc(buf, f, lay, m):
        for p, link in zip(spots, f.get("links", ())):
            buf[lay.body_at + p:lay.body_at + p + 3] = _hex(link, 3)
    return Codec(("links",), dec, enc, "links = body[1:4], [4:7], [8:11] (meter ids, hex)")


def _hex(text, n):
    try:
        raw = bytes.fromhex(str(text))
    except ValueError:
        raise BadInput("%r is not hex" % (text,))
    if len(raw) != n:
        raise BadInput("%r must be %d bytes of hex" % (text, n))
    return raw


def _meal():
    def dec(r):
        if r.body[1] & 2:
            return {"carb_input": r.body[0] / 10, "units": "exchanges"}
        return {"carb_input": ((r.b[1] & 1) << 8) | r.body[0], "units": "grams"}

    def enc(buf, f, lay, m):
        at = lay.body_at
        if "units" in f:
            buf[at + 1] = (buf[at + 1] & 0xFC) | (2 if f["units"] == "exchanges" else 1)
        if "carb_input" not in f:
            return
        if buf[at + 1] & 2:
            _put(buf, at, _scaled(f["carb_input"], 10))
        else:
            v = _ranged(f["carb_input"], 512, "carb_input")
            buf[at] = v & 0xFF
            buf[1] = (buf[1] & 0xFE) | (v >> 8)
    return Codec(("carb_input", "units"), dec, enc,
                 "grams = (b1&1)<<8 | body[0]; exchanges (body[1] bit 1) = body[0]/10 (MinimedKit)")


def _insulin_marker():
    def dec(r):
        return {"amount": (((r.ts[2] & 0x60) << 3) | r.b[1]) / 10}

    def enc(buf, f, lay, m):
        if "amount" in f:
            v = _ranged(_scaled(f["amount"], 10), 1024, "insulin marker amount")
            buf[1] = v & 0xFF
            buf[4] = (buf[4] & 0x9F) | ((v >> 3) & 0x60)
    return Codec(("amount",), dec, enc, "amount = ((t2&0x60)<<3 | b1) x0.1 U")


def _wizard(fixed_kind=None):
    """BolusWizard: 0x5B laid out per family (x22-, x23+), or 0x2F (``"x12"``: one target)."""
    def units(body):
        return "mmol" if (body[1] >> 6) & 3 == 2 else "mgdl"

    def dec(r):
        kind = fixed_kind or ("x23" if r.model.larger else "x22")
        b, body = r.b, r.body
        mmol = units(body) == "mmol"
        g = (lambda v: v / 10) if mmol else (lambda v: v)
        out = {"bg": g(((body[1] & 3) << 8) | b[1]),
               "carb_input": ((body[1] & 0x0C) << 6) | body[0], "units": units(body)}
        if kind == "x23":
            out.update(carb_ratio=(((body[2] & 7) << 8) | body[3]) / 10,
                       sensitivity=g(body[4]), bg_target_low=g(body[5]),
                       bg_target_high=g(body[14]),
                       correction_estimate=_signed(((body[9] & 0x38) << 5) | body[6], 11) / 40,
                       food_estimate=_be(body[7:9]) / 40,
                       unabsorbed_insulin_total=_be(body[10:12]) / 40,
                       bolus_estimate=_be(body[12:14]) / 40)
        else:
            out.update(carb_ratio=body[2], sensitivity=g(body[3]), bg_target_low=g(body[4]),
                       bg_target_high=g(body[12] if kind == "x22" else body[4]),
                       correction_estimate=_signed(((body[7] & 0xF0) << 4) | body[5], 12) / 10,
                       food_estimate=body[6] / 10, unabsorbed_insulin_total=body[9] / 10,
                       bolus_estimate=body[11] / 10)
        return out

    def enc(buf, f, lay, m):
        kind = fixed_kind or ("x23" if m.larger else "x22")
        at = lay.body_at
        if "units" in f:
            buf[at + 1] = (buf[at + 1] & 0x3F) | ((2 if f["units"] == "mmol" else 1) << 6)
        mmol = units(buf[at:]) == "mmol"

        def g(key):
            return _scaled(f[key], 10) if mmol else int(f[key])
        if "bg" in f:
            v = _ranged(g("bg"), 1024, "wizard bg")
            buf[1] = v & 0xFF
            buf[at + 1] = (buf[at + 1] & 0xFC) | (v >> 8)
        if "carb_input" in f:
            v = _ranged(f["carb_input"], 1024, "carb_input")
            buf[at] = v & 0xFF
            buf[at + 1] = (buf[at + 1] & 0xF3) | ((v >> 6) & 0x0C)
        if kind == "x23":
            _wizard23_enc(buf, at, f, g)
        else:
            _wizard22_enc(buf, at, f, g, kind)
    return Codec(("bg", "carb_input", "units", "carb_ratio", "sensitivity", "bg_target_low",
                  "bg_target_high", "correction_estimate", "food_estimate",
                  "unabsorbed_insulin_total", "bolus_estimate"), dec, enc,
                 "spec §2.1; bg, targets and sensitivity /10 when the record's bg unit bits "
                 "say mmol/L; correction is signed: x22- 12 bits ((body[7]&0xF0)<<4 | body[5]) "
                 "x0.1 U, x23+ 11 bits x0.025 U (CareLink exports)")


def _wizard22_enc(buf, at, f, g, kind):
    spots = {"carb_ratio": 2, "sensitivity": 3, "bg_target_low": 4}
    if kind == "x22":
        spots["bg_target_high"] = 12
    elif "bg_target_high" in f and "bg_target_low" not in f:
        spots["bg_target_high"] = 4
    for key, pos in spots.items():
        if key in f:
            _put(buf, at + pos, f[key] if key == "carb_ratio" else g(key))
    for key, pos in (("food_estimate", 6), ("unabsorbed_insulin_total", 9), ("bolus_estimate", 11)):
        if key in f:
            _put(buf, at + pos, _scaled(f[key], 10))
    if "correction_estimate" in f:
        v = _ranged(_scaled(f["correction_estimate"], 10), 2048, "correction_estimate", low=-2048)
        buf[at + 5] = v & 0xFF
        buf[at + 7] = (buf[at + 7] & 0x0F) | ((v >> 4) & 0xF0)


def _wizard23_enc(buf, at, f, g):
    if "carb_ratio" in f:
        v = _ranged(_scaled(f["carb_ratio"], 10), 2048, "carb_ratio")
        buf[at + 2] = (buf[at + 2] & 0xF8) | (v >> 8)
        buf[at + 3] = v & 0xFF
    for key, pos in (("sensitivity", 4), ("bg_target_low", 5), ("bg_target_high", 14)):
        if key in f:
            _put(buf, at + pos, g(key))
    for key, pos in (("food_estimate", 7), ("unabsorbed_insulin_total", 10), ("bolus_estimate", 12)):
        if key in f:
            _put(buf, at + pos, _scaled(f[key], 40), 2)
    if "correction_estimate" in f:
        v = _ranged(_scaled(f["correction_estimate"], 40), 1024, "correction_estimate", low=-1024)
        buf[at + 6] = v & 0xFF
        buf[at + 9] = (buf[at + 9] & 0xC7) | ((v >> 5) & 0x38)


def _unabsorbed():
    def dec(r):
        b = r.b
        return {"data": [{"amount": (b[i] | (b[i + 2] & 0x03) << 8) / 40,
                          "age": b[i + 1] | (b[i + 2] & 0x30) << 4}
                         for i in range(2, len(b) - 2, 3)]}

    def enc(buf, f, lay, m):
        for n, e in enumerate(f.get("data", ())):
            i = 2 + 3 * n
            amount = _ranged(_scaled(e["amount"], 40), 1024, "unabsorbed insulin amount")
            buf[i] = amount & 0xFF
            buf[i + 2] = (buf[i + 2] & 0xFC) | (amount >> 8)
            age = _ranged(e["age"], 1024, "unabsorbed insulin age")
            buf[i + 1] = age & 0xFF
            buf[i + 2] = (buf[i + 2] & 0xCF) | ((age >> 4) & 0x30)
    return Codec(("data",), dec, enc,
                 "(b1-2)/3 entries [amount, age, flags]: amount = (a | (flags&3)<<8) x0.025 U, "
                 "age = b | (flags&0x30)<<4 min (high bits: CareLink exports)")


def _basal_start():
    def dec(r):
        return {"offset": r.body[0] * 1800000, "rate": (r.body[1] | r.body[2] << 8) / 40,
                "profile_index": r.b[1]}

    def enc(buf, f, lay, m):
        at = lay.body_at
        if "offset" in f:
            _put(buf, at, int(f["offset"]) // 1800000)
        if "rate" in f:
            _put(buf, at + 1, _scaled(f["rate"], 40), 2, "little")
        if "profile_index" in f:
            _put(buf, 1, f["profile_index"])
    return Codec(("offset", "rate", "profile_index"), dec, enc,
                 "profile_index = b1; offset = body[0] half-hours (ms); rate = LE body[1..2] x0.025 U/h")


def _wizard_setup():
    """0x5A: before and after bolus-wizard configuration plus insulin action (spec §2 table)."""
    def sizes(m):
        return (3 if m.larger else 2), (68 if m.larger else 58)

    def config(c, m, hours):
        rsize, _ = sizes(m)
        ratios, sens, targets = [], [], []
        for i in range(8):
            e = c[2 + rsize * i:2 + rsize * (i + 1)]
            if i and e[0] == 0:
                break
            ratio = _be(e[1:]) / 10 if m.larger else e[1]
            ratios.append({"start": _hhmm(e[0]), "offset": e[0] * 30, "ratio": ratio})
        at = 2 + rsize * 8
        for i in range(8):
            s, v = c[at + 2 * i:at + 2 * i + 2]
            if i and s == 0:
                break
            sens.append({"start": _hhmm(s), "offset": s * 30, "sensitivity": v})
        at += 16 + (2 if m.larger else 0)
        for i in range(8):
            s, lo, hi = c[at + 3 * i:at + 3 * i + 3]
            if i and s == 0:
                break
            targets.append({"start": _hhmm(s), "offset": s * 30, "low": lo, "high": hi})
        return {"carb_ratios": ratios, "insulin_sensitivies": sens, "bg_targets": targets,
                "InsulinActionHours": hours, "_flags": bytes(c[:2]).hex()}

    def dec(r):
        _, csize = sizes(r.model)
        body = r.body
        return {"stale": config(body[:csize], r.model, body[2 * csize] & 0x0F),
                "changed": config(body[csize:2 * csize], r.model, body[2 * csize] >> 4)}

    def put_config(buf, at, c, m):
        rsize, _ = sizes(m)
        if "_flags" in c:
            buf[at:at + 2] = _hex(c["_flags"], 2)
        for i, e in enumerate(c.get("carb_ratios", ())[:8]):
            p = at + 2 + rsize * i
            _put(buf, p, e["offset"] // 30)
            if m.larger:
                _put(buf, p + 1, _scaled(e["ratio"], 10), 2)
            else:
                _put(buf, p + 1, e["ratio"])
        p0 = at + 2 + rsize * 8
        for i, e in enumerate(c.get("insulin_sensitivies", ())[:8]):
            _put(buf, p0 + 2 * i, e["offset"] // 30)
            _put(buf, p0 + 2 * i + 1, e["sensitivity"])
        p0 += 16 + (2 if m.larger else 0)
        for i, e in enumerate(c.get("bg_targets", ())[:8]):
            _put(buf, p0 + 3 * i, e["offset"] // 30)
            _put(buf, p0 + 3 * i + 1, e["low"])
            _put(buf, p0 + 3 * i + 2, e["high"])

    def enc(buf, f, lay, m):
        _, csize = sizes(m)
        at = lay.body_at
        hours = buf[at + 2 * csize]
        for n, key in enumerate(("stale", "changed")):
            if key in f:
                put_config(buf, at + n * csize, f[key], m)
                if "InsulinActionHours" in f[key]:
                    h = _ranged(f[key]["InsulinActionHours"], 16, "InsulinActionHours")
                    hours = (hours & 0xF0) | h if n == 0 else (hours & 0x0F) | (h << 4)
        buf[at + 2 * csize] = hours
    return Codec(("stale", "changed"), dec, enc,
                 "two configs (before/after): 2 flag bytes, 8 carb ratios (x22-: [start, g/U]; "
                 "x23+: [start, BE ratio x0.1]), 8 sensitivities [start, value], x23+ 2 pad bytes, "
                 "8 targets [start, low, high]; last byte: action hours (low nibble before, high after)")


PATTERNS = PATTERN_RECORD_NAMES


def _select_pattern():
    """0x14: the new pattern sits in t2 bits 5-7, the old one in b1 (CareLink PATTERN_NAME and
    OLD_PATTERN_NAME agree on every exported change)."""
    def name(v):
        return PATTERNS[v] if v < len(PATTERNS) else v

    def number(x):
        return PATTERNS.index(x) if x in PATTERNS else int(x)

    def dec(r):
        return {"pattern": name(r.ts[2] >> 5), "old_pattern": name(r.b[1])}

    def enc(buf, f, lay, m):
        if "pattern" in f:
            v = number(f["pattern"])
            if not 0 <= v < 8:
                raise BadInput("pattern %r out of range" % f["pattern"])
            buf[lay.head + 2] = (buf[lay.head + 2] & 0x1F) | (v << 5)
        if "old_pattern" in f:
            _put(buf, 1, number(f["old_pattern"]))
    return Codec(("pattern", "old_pattern"), dec, enc,
                 "pattern = t2 bits 5-7 (new), old_pattern = b1 (standard, pattern a, pattern b)")


def _hhmm(half_hours):
    return "%02d:%02d:00" % (half_hours // 2, 30 * (half_hours % 2))


def _max_bolus():
    """0x24: scale unresolved in the spec (§4.3); decided by the CareLink exports (docs/history.md)."""
    def dec(r):
        return {"maxBolus": r.b[1] / (40 if r.model.larger else 10)}

    def enc(buf, f, lay, m):
        if "maxBolus" in f:
            _put(buf, 1, _scaled(f["maxBolus"], 40 if m.larger else 10))
    return Codec(("maxBolus",), dec, enc, "maxBolus = b1 x0.1 U (x22-) / x0.025 U (x23+)")


def _valid_date():
    """Daily totals: ``valid_date`` = the 2-byte date (the day summed up, as CareLink says);
    ``timestamp`` = 00:00 of the day after, when the pump writes them (decocare 0.0.31, oref0)."""
    return Codec(("valid_date",), lambda r: {}, lambda buf, f, lay, m: None,
                 "valid_date = the 2-byte date (day summed up); timestamp = 00:00 of the next day")


# --------------------------------------------------------------------------------------------
# the table


class RecordType:
    """One opcode: name, layout per family, field codec, and a one-line description."""

    def __init__(self, op, name, length, ts=2, date="ts", codec=NO_FIELDS, doc="", peers=""):
        self.op, self.name, self.codec, self.doc, self.peers = op, name, codec, doc, peers
        self._length, self._ts, self.date = length, ts, date

    def layout(self, model):
        length = _per_family(self._length, model)
        head = _per_family(self._ts, model) if self.date else length
        return Layout(length, head, self.date)

    def length_text(self):
        return _describe(self._length)

    def head_text(self):
        if not self.date:
            return "none"
        return ("d@" if self.date == "d2" else "") + _describe(self._ts)


def _per_family(value, model):
    if isinstance(value, dict):
        return value[model.family]
    if isinstance(value, tuple):
        return value[1] if model.larger else value[0]
    return value


def _describe(value):
    if isinstance(value, dict):
        return " ".join("%s:%s" % kv for kv in value.items())
    if isinstance(value, tuple):
        return "%s / %s" % value
    return str(value)


_SENSOR_SETUP = {"x12": 37, "x15": 37, "x22": 37, "x23": 37, "x51": 41}

TABLE = [
    RecordType(0x01, "Bolus", (9, 13), (4, 8), codec=_bolus(), doc="bolus delivered"),
    RecordType(0x03, "Prime", 10, 5, codec=_prime(), doc="cannula/tubing prime"),
    RecordType(0x06, "AlarmPump", 9, 4, doc="pump alarm (code b1)",
               codec=b1("alarm_type", int, int, "alarm_type = b1 (alarm code)")),
    RecordType(0x07, "ResultDailyTotal", (7, 10), 5, "d2", codec=_daily_total(), doc="daily total"),
    RecordType(0x08, "ChangeBasalProfile_old_profile", 152, codec=_basal_profile(),
               doc="basal profile before a change"),
    RecordType(0x09, "ChangeBasalProfile_new_profile", 152, codec=_basal_profile(),
               doc="basal profile after a change"),
    RecordType(0x0A, "CalBGForPH", 7, codec=_cal_bg(), doc="meter glucose entered"),
    RecordType(0x0B, "AlarmSensor", 8, 3, codec=_sensor_alarm(), doc="sensor alarm"),
    RecordType(0x0C, "ClearAlarm", 7, doc="alarm cleared",
               codec=b1("alarm_type", int, int, "alarm_type = b1 (alarm code cleared)")),
    RecordType(0x14, "SelectBasalProfile", 7, codec=_select_pattern(), doc="active basal pattern chosen"),
    RecordType(0x16, "TempBasalDuration", 7, doc="temp basal duration (paired with 0x33)",
               codec=b1("duration (min)", lambda v: v * 30, lambda x: _scaled(x, 1 / 30),
                        "duration (min) = b1 x30 (0 = cancel)")),
    RecordType(0x17, "ChangeTime", 7, doc="clock before a time change"),
    RecordType(0x18, "NewTimeSet", 7, doc="clock after a time change"),
    RecordType(0x19, "LowBattery", 7, doc="low battery warning"),
    RecordType(0x1A, "Battery", 7, codec=flag(), doc="battery removed/inserted"),
    RecordType(0x1B, "SetAutoOff", 7, doc="auto-off setting",
               codec=b1("hours", int, int, "hours = b1")),
    RecordType(0x1C, "PrepareInsulinChange", 7, doc="x12 reservoir change started"),
    RecordType(0x1E, "PumpSuspend", 7, doc="delivery suspended"),
    RecordType(0x1F, "PumpResume", 7, doc="delivery resumed"),
    RecordType(0x20, "SelfTest", 7, doc="pump self test"),
    RecordType(0x21, "Rewind", 7, doc="reservoir rewind"),
    RecordType(0x22, "questionable22", 7, doc="clear settings"),
    RecordType(0x23, "questionable23", 7, codec=flag(), doc="child block enable"),
    RecordType(0x24, "questionable24", 7, codec=_max_bolus(), doc="max bolus changed"),
    RecordType(0x26, "EnableDisableRemote", 21, codec=flag(), doc="remote control enable + ids"),
    RecordType(0x27, "ChangeRemoteID", 7, doc="remote id (decocare only, never seen)"),
    RecordType(0x2C, "ChangeMaxBasal", 7, codec=scaled_b1("maxBasal", 40, "maxBasal = b1 x0.025 U/h"),
               doc="max basal changed"),
    RecordType(0x2D, "SetBolusWizardEnabled", 7, codec=flag(on=lambda v: v == 1),
               doc="bolus wizard enable"),
    RecordType(0x2E, "ChangeMazaheri2e", 107, doc="x12 bolus wizard setup (undecoded)"),
    RecordType(0x2F, "BolusWizard512", 19, codec=_wizard("x12"), doc="x12 bolus wizard estimate"),
    RecordType(0x30, "UnabsorbedInsulin512", "b1", None, None, codec=_unabsorbed(),
               doc="x12 insulin on board list (no date)"),
    RecordType(0x31, "ChangeBGReminderOffset", 7, doc="BG reminder offset"),
    RecordType(0x32, "SetAlarmClockTime", 7, doc="alarm clock time"),
    RecordType(0x33, "TempBasal", 8, codec=_temp_basal(), doc="temp basal rate (paired with 0x16)"),
    RecordType(0x34, "LowReservoir", 7, codec=scaled_b1("amount", 10, "amount = b1 x0.1 U"),
               doc="low reservoir warning"),
    RecordType(0x35, "AlarmClockReminder", 7, doc="alarm clock reminder"),
    RecordType(0x36, "ChangeMeterID", 21, doc="meter ids (x12/x15)"),
    RecordType(0x39, "BGReceived512", 10, codec=_bg_received(), doc="meter BG received (x15)"),
    RecordType(0x3A, "ConfirmInsulinChange", 7, doc="x12 reservoir change confirmed"),
    RecordType(0x3B, "questionable3b", 7, doc="sensor status"),
    RecordType(0x3C, "ChangeParadigmLinkID", 21, codec=_links(), doc="linked meter ids"),
    RecordType(0x3F, "BGReceived", 10, codec=_bg_received(), doc="meter BG received"),
    RecordType(0x40, "JournalEntryMealMarker", 9, codec=_meal(), doc="carbs entered"),
    RecordType(0x41, "JournalEntryExerciseMarker", 8, doc="exercise marker"),
    RecordType(0x42, "JournalEntryInsulinMarker", 8, codec=_insulin_marker(),
               doc="insulin given outside the pump"),
    RecordType(0x43, "JournalEntryOtherMarker", 7, doc="other marker"),
    RecordType(0x44, "EnableSensorAutoCal", 7, doc="sensor auto calibration"),
    RecordType(0x4F, "ChangeBolusWizardSetup", 39, doc="x22 sensor setup (undecoded)"),
    RecordType(0x50, "ChangeSensorSetup2", _SENSOR_SETUP, doc="sensor setup (undecoded)"),
    RecordType(0x51, "hack51", 7, doc="sensor setting 51"),
    RecordType(0x52, "hack52", 7, doc="sensor setting 52"),
    RecordType(0x53, "hack53", 8, doc="sensor alarm silence"),
    RecordType(0x54, "Ian54", 64, doc="sensor setting 54"),
    RecordType(0x55, "hack55", 55, doc="sensor setting 55"),
    RecordType(0x56, "hack56", 12, doc="sensor rate-of-change alert"),
    RecordType(0x57, "SettingSomething57", 7, doc="bolus scroll step"),
    RecordType(0x5A, "OldBolusWizardChange", (124, 144), codec=_wizard_setup(),
               doc="bolus wizard setup change"),
    RecordType(0x5B, "BolusWizard", (20, 22), codec=_wizard(), doc="bolus wizard estimate"),
    RecordType(0x5C, "UnabsorbedInsulinBolus", "b1", None, None, codec=_unabsorbed(),
               doc="insulin on board list (no date, precedes its bolus)"),
    RecordType(0x5D, "SaveSettings", 7, doc="settings saved"),
    RecordType(0x5E, "questionable5e", 7, codec=flag(), doc="variable bolus enable"),
    RecordType(0x5F, "ChangeAudioBolus", 7, doc="audio bolus enable/step"),
    RecordType(0x60, "ChangeBGReminderEnable", 7, codec=flag(on=lambda v: v == 1),
               doc="BG reminder enable"),
    RecordType(0x61, "questionable61", 7, codec=flag(), doc="alarm clock enable"),
    RecordType(0x62, "ChangeTempBasalType", 7, doc="temp basal type",
               codec=choice("temp", ("absolute", "percent"), "temp = b1 (absolute, percent)")),
    RecordType(0x63, "ChangeAlarmNotifyMode", 7, doc="alarm notify mode"),
    RecordType(0x64, "ChangeTimeDisplay", 7, doc="12/24 h display",
               codec=choice("timeFormat", ("d12", "d24"), "timeFormat = b1 (d12, d24)")),
    RecordType(0x65, "questionable65", 7, doc="reservoir warning"),
    RecordType(0x66, "questionable66", 7, codec=flag(), doc="bolus reminder enable"),
    RecordType(0x67, "ChangeBolusReminderTime", 9, doc="bolus reminder time"),
    RecordType(0x68, "DeleteBolusReminderTime", 9, doc="bolus reminder deleted"),
    RecordType(0x69, "Ian69", 9, doc="missed bolus reminder"),
    RecordType(0x6A, "DeleteAlarmClockTime", 7, doc="alarm clock deleted"),
    RecordType(0x6C, "old6c", 38, 1, "d2", codec=_valid_date(), doc="x15 daily summary"),
    RecordType(0x6D, "Model522ResultTotals", 44, 1, "d2", codec=_valid_date(), doc="x22 daily summary"),
    RecordType(0x6E, "Sara6E", 52, 1, "d2", codec=_valid_date(), doc="x23+ daily summary"),
    RecordType(0x6F, "questionable6f", 7, doc="carb units",
               codec=choice("carb_units", ("unset", "grams", "exchanges"), "carb_units = b1")),
    RecordType(0x7B, "BasalProfileStart", 10, codec=_basal_start(), doc="basal segment started"),
    RecordType(0x7C, "ConnectDevicesOtherDevicesEnabled", 7, codec=flag(on=lambda v: v == 1),
               doc="watchdog / other devices enable"),
    RecordType(0x7D, "ChangeOtherDeviceID", 37, doc="other device ids"),
    RecordType(0x81, "ChangeWatchdogMarriageProfile", 12, doc="watchdog marriage"),
    RecordType(0x82, "DeleteOtherDeviceID", 12, doc="other device deleted"),
    RecordType(0x83, "ChangeCaptureEventEnable", 7, codec=flag(), doc="capture event enable"),
    RecordType(0xA8, "IanA8", 15, 10, doc="decocare only, never seen"),
]

BY_OP = {t.op: t for t in TABLE}
BY_NAME = {t.name: t for t in TABLE}
assert len(BY_OP) == len(TABLE) and len(BY_NAME) == len(TABLE)


def table_markdown(model=None):
    """The record table as markdown: list_opcodes.py prints it, docs/records.md is this text."""
    lines = ["# Pump history record types", "",
             "Generated from `decocare/records.py` `TABLE` by `python -m decocare.tools.docs` "
             "(`list_opcodes.py` prints it too). Lengths are total bytes per model family (`x22- / x23+` or "
             "per family); `b1` = byte 1 holds the length. `date@` is the offset of the 5-byte "
             "timestamp (`d@` a 2-byte date).", ""]
    if model is not None:
        lines += ["Model %s (family %s)." % (model.number, model.family), ""]
    lines += ["| op | name | length | date@ | fields | what |", "|---|---|---|---|---|---|"]
    for t in TABLE:
        if model is None:
            length, at = t.length_text(), t.head_text()
        else:
            lay = t.layout(model)
            length = lay.length
            at = "none" if not t.date else ("d@" if t.date == "d2" else "") + str(lay.head)
        lines.append("| 0x%02X | %s | %s | %s | %s | %s |" % (
            t.op, t.name, length, at, t.codec.doc.replace("|", "\\|") or "-", t.doc))
    return "\n".join(lines) + "\n"

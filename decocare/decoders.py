"""Decoders for pump replies, one function per reply layout (spec protocol.md §5).

Every decoder takes ``(data, model)``: ``data`` is what the stick returns (the radio body minus
its length byte, so spec "d[i]" is ``data[i]``) and ``model`` a ``models.Model``.  They return
JSON-able values with decocare's key names where decocare had them, and fix decocare where the
spec shows it wrong (§5.3, §5.5, §5.7).  The table in ``commands.py`` says which row uses which.
The emulator builds replies from its own copy of the layouts (``emulator/replies.py``) on purpose:
an independent oracle, not an encoder paired with each decoder (docs/ARCHITECTURE.md).
"""
import datetime

from .errors import CommError
from .pages import page_crc_ok

CARB_UNITS = {1: "grams", 2: "exchanges"}
BG_UNITS = {1: "mg/dL", 2: "mmol/L"}


def _need(data, size, what):
    """Raise CommError when a reply is shorter than the bytes its layout reads."""
    if len(data) < size:
        raise CommError("%s reply too short: %d bytes, need %d (%s)" % (what, len(data), size, bytes(data).hex()))
    return data


def _u16(data, i):
    return (data[i] << 8) | data[i + 1]


def _u32(data, i):
    return int.from_bytes(bytes(data[i:i + 4]), "big")


def _units(value):
    """Insulin values rounded to the pump's finest step (1/40 U) so floats print cleanly."""
    return round(value, 3)


def _clock(halfhours):
    """Half-hours since midnight -> ('HH:MM:SS', minutes)."""
    minutes = halfhours * 30
    return "%02d:%02d:00" % divmod(minutes, 60), minutes


def raw(data, model):
    """Commands whose meaning is not established: the bytes, as hex."""
    return {"raw": bytes(data).hex()}


def pump_model(data, model):
    """0x8D: d0 = length, d1.. ASCII model number ("523")."""
    _need(data, 1, "ReadPumpModel")
    n = data[0]
    _need(data, 1 + n, "ReadPumpModel")
    return bytes(data[1:1 + n]).decode("ascii", "replace")


def rtc(data, model):
    """0x70: d0 h, d1 min, d2 s, d3-4 year, d5 month, d6 day -> naive ISO datetime (pump local time)."""
    _need(data, 7, "ReadRTC")
    try:
        when = datetime.datetime(_u16(data, 3), data[5], data[6], data[0], data[1], data[2])
    except ValueError:
        raise CommError("pump clock reply holds no valid date: %s" % bytes(data[:7]).hex())
    return when.isoformat()


def pump_id(data, model):
    """0x71: d0-5 the serial number as ASCII digits."""
    _need(data, 6, "ReadPumpID")
    return bytes(data[:6]).decode("ascii", "replace")


def battery(data, model):
    """0x72: d0 0 normal / 1 low, d1-2 volts x 100."""
    _need(data, 3, "ReadBatteryStatus")
    return {"status": {0: "normal", 1: "low"}.get(data[0], "unknown (%d)" % data[0]),
            "voltage": _u16(data, 1) / 100.0}


def reservoir(data, model):
    """0x73: units left; up to x22 d0-1 in 0.1 U, x23+ d2-3 in 0.025 U."""
    if model.larger:
        _need(data, 4, "ReadRemainingInsulin")
        return _units(_u16(data, 2) / 40.0)
    _need(data, 2, "ReadRemainingInsulin")
    return _units(_u16(data, 0) / 10.0)


def firmware(data, model):
    """0x74: ASCII up to the first 0x0B ("VER 2.4A1.1")."""
    text = bytes(data).split(b"\x0b", 1)[0].split(b"\x00", 1)[0]
    return text.decode("ascii", "replace").strip()


def error_status(data, model):
    """0x75: d0 = the pump's current error/alarm code, 0 = none [INF]."""
    _need(data, 1, "ReadErrorStatus")
    return {"code": data[0], "raw": bytes(data).hex()}


def remote_ids(data, model):
    """0x76: three 6-character remote IDs; "------" marks an empty slot."""
    _need(data, 18, "ReadRadioCtrlACL")
    ids = [bytes(data[i:i + 6]).decode("ascii", "replace") for i in range(0, 18, 6)]
    return [i for i in ids if i != "------" and i != "\x00" * 6]


def totals_today(data, model):
    """0x79: up to x22 two uint16 in 0.1 U; x23+ two uint32 in 0.025 U [INF: spec §5.3]."""
    if model.larger:
        _need(data, 8, "ReadTotalsToday")
        return {"today": _units(_u32(data, 0) / 40.0), "yesterday": _units(_u32(data, 4) / 40.0)}
    _need(data, 4, "ReadTotalsToday")
    return {"today": _units(_u16(data, 0) / 10.0), "yesterday": _units(_u16(data, 2) / 10.0)}


def pump_status(data, model):
    """0xCE: d0 status (3 = normal), d1 bolusing, d2 suspended (decocare's keys)."""
    _need(data, 3, "ReadPumpStatus")
    return {"status": "normal" if data[0] == 0x03 else "error", "status_code": data[0],
            "bolusing": data[1] == 1, "suspended": data[2] == 1}


def basal_temp(data, model):
    """0x98: d0 0 absolute / 1 percent, d1 percent, d2-3 rate in 0.025 U/h, d4-5 minutes left."""
    _need(data, 6, "ReadBasalTemp")
    if data[0] == 1:
        return {"temp": "percent", "rate": data[1], "duration": _u16(data, 4)}
    return {"temp": "absolute", "rate": _units(_u16(data, 2) / 40.0), "duration": _u16(data, 4)}


def _alarm(code):
    """decocare's {volume, mode} reading of settings d1 (4 = vibrate-style mode 1) [DECO]."""
    if code == 4:
        return {"volume": -1, "mode": 1}
    return {"volume": code, "mode": 2}


def settings(data, model):
    """ReadSettings: x12 0x91 (18 bytes), x15/x22 0xC0 (21), x23+ 0xC0 (25) — spec §5.4.

    x23+ moves max bolus to d6 and max basal to d7-8 (so d8 is no time format there); x12's
    insulin action byte is a curve code (0 -> 6 h, else 8 h) [ECC1, no x12 capture]."""
    family = model.family
    size = 18 if family == "x12" else 21
    _need(data, size, "ReadSettings")
    out = {
        "auto_off_duration_hrs": data[0],
        "alarm": _alarm(data[1]),
        "audio_bolus_enable": data[2] == 1,
        "audio_bolus_size": data[3] / 10.0 if data[2] == 1 else 0,
        "variable_bolus_enable": data[4] == 1,
        "insulinConcentration": {0: 100, 1: 50}.get(data[9], data[9]),
        "patterns_enabled": data[10] == 1,
        "selected_pattern": data[11],
        "rf_enable": data[12] == 1,
        "block_enable": data[13] == 1,
        "temp_basal": {"type": "Percent" if data[14] == 1 else "Units/hour", "percent": data[15]},
        "paradigm_enabled": data[16],
    }
    if model.larger:
        out["maxBolus"] = _units(data[6] / 10.0)
        out["maxBasal"] = _units(_u16(data, 7) / 40.0)
    else:
        out["maxBolus"] = _units(data[5] / 10.0)
        out["maxBasal"] = _units(_u16(data, 6) / 40.0)
        out["timeformat"] = data[8]
    if family == "x12":
        out["insulin_action_curve"] = 6 if data[17] == 0 else 8
    else:
        out["insulin_action_curve"] = data[17]
        out["low_reservoir_warn_type"] = data[18]
        out["low_reservoir_warn_point"] = data[19]
        out["keypad_lock_status"] = data[20]
    return out


def basal_profile(data, model):
    """0x92-0x94: 48 entries ``[rate_lo, rate_hi, start]`` -> [{i, start, minutes, offset, rate}]
    (decocare 0.0.31's keys, which oref0 reads; ``offset`` = ``minutes``); rate uint16 LE in
    0.025 U/h, start in half-hours; the list ends at the first entry after index 0 that is ``00 00 00`` or has start
    0x3F (``00 00 3F`` alone = empty profile).  decocare read only the low byte (spec §5.3)."""
    _need(data, 3, "basal profile")
    out = []
    for i in range(min(len(data) // 3, 48)):
        lo, hi, start = data[3 * i:3 * i + 3]
        if start == 0x3F or (i > 0 and lo == hi == start == 0):
            break
        clock, minutes = _clock(start)
        out.append({"i": i, "start": clock, "minutes": minutes, "offset": minutes,
                    "rate": _units(((hi << 8) | lo) / 40.0)})
    return out


def carb_units(data, model):
    """0x88: 1 grams, 2 exchanges."""
    _need(data, 1, "ReadCarbUnits")
    return CARB_UNITS.get(data[0], "unknown (%d)" % data[0])


def bg_units(data, model):
    """0x89: 1 mg/dL, 2 mmol/L."""
    _need(data, 1, "ReadBGUnits")
    return BG_UNITS.get(data[0], "unknown (%d)" % data[0])


def _entry(x, start):
    """One schedule entry's place: ``x`` its index, ``i`` the start in half-hours, ``start``
    "HH:MM:SS", ``offset`` minutes after midnight (what oref0, decocare 0.0.31 and ecc1 read)."""
    clock, minutes = _clock(start)
    return {"x": x, "i": start, "start": clock, "offset": minutes}


def carb_ratios(data, model):
    """0x8A, spec §5.5.  Up to x22: 8 pairs ``[start, ratio]`` from d1, g/U or exchanges/10.
    x23+: d1 = number of entries, then ``[start, hi, lo]`` from d2; the value is scaled by the
    units (10 x g/U, 1000 x U/exchange), not by the high byte as decocare did [ECC1]."""
    _need(data, 2, "ReadCarbRatios")
    units = data[0]
    schedule = []
    if model.larger:
        count = min(data[1], 8)
        _need(data, 2 + 3 * count, "ReadCarbRatios")
        for x in range(count):
            start, hi, lo = data[2 + 3 * x:5 + 3 * x]
            r = (hi << 8) | lo
            entry = _entry(x, start)
            entry.update(ratio=round(r / 10.0 if units == 1 else r / 1000.0, 3), r=r, q=hi)
            schedule.append(entry)
    else:
        for x in range(min((len(data) - 1) // 2, 8)):
            start, r = data[1 + 2 * x], data[2 + 2 * x]
            if x > 0 and start == 0:
                break
            entry = _entry(x, start)
            entry.update(ratio=r if units == 1 else r / 10.0, r=r)
            schedule.append(entry)
    return {"units": CARB_UNITS.get(units, "unknown (%d)" % units), "first": units, "schedule": schedule}


def sensitivities(data, model):
    """0x8B: d0 units; 8 pairs ``[b0, b1]``: start = b0 & 0x3F, value = b1 + ((b0 & 0x40) << 2),
    mmol/L values in tenths."""
    _need(data, 3, "ReadInsulinSensitivities")
    units = data[0]
    out = []
    for x in range(min((len(data) - 1) // 2, 8)):
        b0, b1 = data[1 + 2 * x], data[2 + 2 * x]
        if x > 0 and b0 & 0x3F == 0:
            break
        value = b1 + ((b0 & 0x40) << 2)
        entry = _entry(x, b0 & 0x3F)
        entry["sensitivity"] = value / 10.0 if units == 2 else value
        out.append(entry)
    return {"units": BG_UNITS.get(units, "unknown (%d)" % units), "first": units, "sensitivities": out}


def _bg_targets(data, width, what):
    _need(data, 1 + width, what)
    units = data[0]
    out = []
    for x in range(min((len(data) - 1) // width, 8)):
        item = data[1 + width * x:1 + width * (x + 1)]
        if x > 0 and item[0] == 0:
            break
        entry = _entry(x, item[0])
        low, high = (item[1], item[1]) if width == 2 else (item[1], item[2])
        if units == 2:
            low, high = low / 10.0, high / 10.0
        entry.update(low=low, high=high)
        out.append(entry)
    return {"units": BG_UNITS.get(units, "unknown (%d)" % units), "first": units, "targets": out,
            "raw": bytes(data).hex()}


def bg_targets_512(data, model):
    """0x8C (x12): d0 units; ``[start, target]`` pairs (low = high = target) [ECC1, no capture]."""
    return _bg_targets(data, 2, "ReadBGTargets")


def bg_targets(data, model):
    """0x9F (x15+): d0 units; 8 x ``[start, low, high]``, mmol/L in tenths."""
    return _bg_targets(data, 3, "ReadBGTargets515")


def cur_page_number(data, model):
    """0x9D: uint32 = the oldest history page that exists; pages 0..min(value, last) can be read
    (ecc1's reading, which matches the vendor software; decocare turned 0 into 36)."""
    _need(data, 4, "ReadCurPageNumber")
    return _u32(data, 0)


def cur_glucose_page(data, model):
    """0xCD: d0-3 current glucose page, d5 number of glucose pages, d7 number of ISIG pages."""
    _need(data, 8, "ReadCurGlucosePageNumber")
    return {"page": _u32(data, 0), "glucose": data[5], "isig": data[7]}


def calibration_factor(data, model):
    """0x9C: d0-1 uint16 [ECC1]; the scale is not established, so the raw integer is reported."""
    _need(data, 2, "ReadCalibrationFactor")
    return {"value": _u16(data, 0), "raw": bytes(data).hex()}


def filter_pages(data, model):
    """0xA8/0xA9: d0-1 first page, d2-3 last page holding the requested dates."""
    _need(data, 4, "filter")
    return {"first": _u16(data, 0), "last": _u16(data, 2)}


def page(data, model):
    """History/glucose/ISIG pages are decoded by ``history``/``cgm``; here only the CRC verdict."""
    return {"raw": bytes(data).hex(), "crc_ok": page_crc_ok(data)}

"""Pump state -> the data bytes the stick delivers for each read (spec protocol.md §5.3–§5.6).

Written from the spec's layouts and checked against the real payloads of §5.6; the client's
decoders in ``decocare.commands`` must read these back to the emulator's state (the
cross-check lives in the tests).  Keys are the canonical command names of
``decocare.commands.COMMANDS`` (a row's ``variant_of`` when it has one, e.g. ReadRTC508 -> ReadRTC).

A second copy of the reply layouts on purpose (beside ``decocare.decoders``): an independent
oracle catches a wrong offset that one shared table would mirror (docs/ARCHITECTURE.md).
"""
import math

# Replies that are constant on every captured pump (the 515 of the vendor captures).
FIXED = {
    "ReadErrorStatus": b"\x00",
    "ReadPumpState": b"\x03",
    "ReadLanguage": b"\x00",
    "ReadBolusWizardSetupStatus": b"\x01",
    "ReadBGAlarmClocks": b"\xff" * 16,
    "ReadReservoirWarning": b"\x00\x14",
    "ReadBGReminderEnable": b"\x00",
    "ReadLogicLinkIDs": b"-" * 18,
    "ReadBGAlarmEnable": b"\x00",
    "ReadSavedSettingsDate": b"\x00\x14",
    "ReadContrast": b"\x02\x07",
    "ReadBolusReminderEnable": b"\x00",
    "ReadBolusReminders": b"\xff" * 16,
    "ReadFactoryParameters": bytes.fromhex("0102010101010202001102615dc0"),
    "ReadSensorSettings": b"",
    "ReadOtherDevicesIDS": b"",
}


def u16(v):
    return int(v).to_bytes(2, "big")


def rtc(p):
    t = p.now()
    return bytes([t.hour, t.minute, t.second]) + u16(t.year) + bytes([t.month, t.day])


def firmware(p):
    return p.firmware.encode("ascii") + b"\x0b\x0b"


def model_number(p):
    text = p.model.number.encode("ascii")
    return bytes([len(text)]) + text


def battery(p):
    return bytes([1 if p.battery_low else 0]) + u16(round(p.battery_volts * 100))


def reservoir(p):
    if p.model.larger:
        return b"\x00\x00" + u16(round(p.reservoir * 40))
    return u16(round(p.reservoir * 10))


def acl(p):
    ids = (list(p.remote_ids) + ["------"] * 3)[:3]
    return "".join(ids).encode("ascii")


def totals(p):
    today, yesterday = p.totals()
    if p.model.larger:    # 8 bytes: two 32-bit values in 0.025 U [INF, spec §5.3]
        return round(today * 40).to_bytes(4, "big") + round(yesterday * 40).to_bytes(4, "big")
    return u16(round(today * 10)) + u16(round(yesterday * 10))


def pump_status(p):
    return bytes([0x03, 1 if p.bolusing() else 0, 1 if p.suspended else 0])


def basal_temp(p):
    temp = p.temp_basal()
    if temp is None:
        return bytes([p.settings["temp_basal_type"], 0, 0, 0, 0, 0])
    left = max(0, math.ceil(temp["seconds_left"] / 60))
    if temp["type"] == "percent":
        return bytes([1, temp["percent"], 0, 0]) + u16(left)
    return bytes([0, 0]) + u16(round(temp["rate"] * 40)) + u16(left)


def settings(p):
    """ReadSettings (0xC0, and 0x91/0x7F for x12/x11): layouts of spec §5.4."""
    s, fam = p.settings, p.model
    head = bytes([s["auto_off_hours"], s["alarm"], s["audio_bolus_enable"], s["audio_bolus_step"],
                  s["variable_bolus_enable"]])
    max_bolus = round(s["max_bolus"] * 10)
    max_basal = u16(round(s["max_basal"] * 40))
    tail = bytes([s["insulin_concentration"], s["patterns_enabled"], s["selected_pattern"],
                  s["rf_enable"], s["block_enable"], s["temp_basal_type"], s["temp_basal_percent"],
                  s["paradigm_enabled"], s["insulin_action_hours"], s["low_reservoir_warn_type"],
                  s["low_reservoir_warn_point"], s["keypad_lock"]])
    if fam.larger:       # 25 bytes: max bolus in d5-6, max basal d7-8, no time format byte
        return head + u16(max_bolus) + max_basal + tail + bytes([0x64, 0x01, 0x01, 0x00])
    body = head + bytes([max_bolus]) + max_basal + bytes([s["time_format"]]) + tail
    return body[:18] if fam.generation <= 12 else body[:21]


def carb_ratios(p):
    if p.model.larger:   # [units, count, (start, value hi, lo)*]: value 10 x g/U or 1000 x U/exch
        scale = 10 if p.carb_units == 1 else 1000
        out = bytes([p.carb_units, len(p.carb_ratios)])
        for start, ratio in p.carb_ratios:
            out += bytes([start]) + u16(round(ratio * scale))
        return out
    scale = 1 if p.carb_units == 1 else 10
    out = bytes([p.carb_units])
    for start, ratio in p.carb_ratios:
        out += bytes([start, round(ratio * scale)])
    return out


def _bg(p, value):
    return round(value * 10) if p.bg_units == 2 else int(value)


def sensitivities(p):
    out = bytes([p.bg_units])
    for start, isf in p.sensitivities:
        v = _bg(p, isf)
        out += bytes([start | ((v >> 8) << 6), v & 0xFF])
    return out


def bg_targets(p):
    """x15+ 0x9F: [units, (start, low, high)*]; x12 0x8C: [units, (start, target)*]."""
    out = bytes([p.bg_units])
    for start, low, high in p.bg_targets:
        out += bytes([start, _bg(p, low)]) + (b"" if p.model.generation <= 12 else bytes([_bg(p, high)]))
    return out


def profile(index):
    """192 bytes: 48 x [rate LE16 in 0.025 U/h, start half-hours]; an empty profile is 00 00 3F."""
    def build(p):
        entries = p.profiles[index]
        out = b"".join(round(rate * 40).to_bytes(2, "little") + bytes([start]) for start, rate in entries)
        if not entries:
            out = b"\x00\x00\x3f"
        return out + bytes(192 - len(out))
    return build


def cur_page(p):
    return p.history.cur_page_number().to_bytes(4, "big")


def cur_glucose_page(p):
    number = p.glucose_page_number()
    return number.to_bytes(4, "big") + bytes([0, len(p.glucose), 0, len(p.isig)])


def calibration_factor(p):
    return u16(round(p.calibration_factor * 1000))


BUILDERS = {
    "ReadPumpModel": model_number,
    "ReadPumpID": lambda p: p.serial.encode("ascii"),
    "ReadFirmwareVersion": firmware,
    "ReadRTC": rtc,
    "ReadBatteryStatus": battery,
    "ReadRemainingInsulin": reservoir,
    "ReadRadioCtrlACL": acl,
    "ReadTotalsToday": totals,
    "ReadPumpStatus": pump_status,
    "ReadBasalTemp": basal_temp,
    "ReadSettings": settings,
    "ReadCarbUnits": lambda p: bytes([p.carb_units]),
    "ReadBGUnits": lambda p: bytes([p.bg_units]),
    "ReadCarbRatios": carb_ratios,
    "ReadInsulinSensitivities": sensitivities,
    "ReadBGTargets": bg_targets,
    "ReadProfile_STD512": profile(0),
    "ReadProfile_A512": profile(1),
    "ReadProfile_B512": profile(2),
    "ReadCurPageNumber": cur_page,
    "ReadCurGlucosePageNumber": cur_glucose_page,
    "ReadCalibrationFactor": calibration_factor,
}


def build(name, pump):
    """Data bytes of read ``name`` (canonical name) for ``pump``, or None when not emulated."""
    if name in BUILDERS:
        return BUILDERS[name](pump)
    return FIXED.get(name)

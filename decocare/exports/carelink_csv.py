"""Decoded pump history as CareLink's "Medtronic Diabetes CareLink Personal Data Export File".

``write(records, out, model, serial=None)`` writes, for decocare-shaped records (one newest-first
list, as ``decocare.history.merge`` returns, undated records nested in ``appended``), what the
vendor's export holds for them: the header block, the column header line and one row per vendor
event, oldest first, numbered from 1.  ``rows(records, model)`` gives the same rows as dicts.

Everything the export says about a record type comes from ONE table, ``TABLE`` below: for each
decoded ``_type`` the vendor ``Raw-Type`` row(s) it makes, how each ``Raw-Values`` key is
computed (``V(KEY, how, function)``) and which human columns it fills.  ``table_markdown()``
renders it for docs/carelink-csv.md (``python -m decocare.tools.docs``).

What is *not* reproduced, on purpose:
* ``Raw-ID``, ``Raw-Upload ID``, ``Raw-Seq Num`` and the ``*_DATUM`` keys inside Raw-Values are
  CareLink database ids (rows and settings objects of its server).  They do not exist in the
  pump; the columns are left empty and the ``*_DATUM`` keys are left out.
* rows CareLink makes from other sources: CGM rows (glucose/ISIG pages), the ``Current*``
  settings snapshot taken at upload time, and the detail rows of bolus-wizard / sensor setup
  changes (``ChangeCarbRatio``..., the setup bytes are not decoded).
* values decocare does not decode: some are read here from the record's bytes, where the real
  exports show what they mean (the requestor bits of the date, the bolus kind bits, alarm module
  and line, the 0x5C flag byte, ...); a byte value the exports never showed leaves its key out of
  Raw-Values rather than being guessed.  Keys CareLink writes that no byte holds for us (e.g.
  Clear's EXTENT) are left out too.
"""
import csv
import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from .. import history
from ..vocabulary import PATTERN_RECORD_NAMES

COLUMNS = (
    "Index", "Date", "Time", "Timestamp", "New Device Time", "BG Reading (mg/dL)",
    "Linked BG Meter ID", "Temp Basal Amount (U/h)", "Temp Basal Type",
    "Temp Basal Duration (hh:mm:ss)", "Bolus Type", "Bolus Volume Selected (U)",
    "Bolus Volume Delivered (U)", "Programmed Bolus Duration (hh:mm:ss)", "Prime Type",
    "Prime Volume Delivered (U)", "Suspend", "Rewind", "BWZ Estimate (U)",
    "BWZ Target High BG (mg/dL)", "BWZ Target Low BG (mg/dL)", "BWZ Carb Ratio (grams)",
    "BWZ Insulin Sensitivity (mg/dL)", "BWZ Carb Input (grams)", "BWZ BG Input (mg/dL)",
    "BWZ Correction Estimate (U)", "BWZ Food Estimate (U)", "BWZ Active Insulin (U)", "Alarm",
    "Sensor Calibration BG (mg/dL)", "Sensor Glucose (mg/dL)", "ISIG Value",
    "Daily Insulin Total (U)", "Raw-Type", "Raw-Values", "Raw-ID", "Raw-Upload ID",
    "Raw-Seq Num", "Raw-Device Type",
)

# CareLink's labels of the alarm codes seen in real exports; other codes get the generic label
# CareLink gave every other code it exported ("Device Alarm (N)", "Sensor Alarm (N)").
PUMP_ALARMS = {3: "Battery Out Limit Exceeded", 4: "No Delivery", 16: "Device Reset",
               61: "Reprogram Error"}
SENSOR_ALERTS = {101: "High Glucose", 102: "Low Glucose", 104: "Meter BG Now",
                 106: "Calibration Error", 107: "Sensor End", 112: "Weak Signal",
                 113: "Lost Sensor", 114: "High Glucose Predicted", 115: "Low Glucose Predicted"}

NULL = "null"

# byte values of undecoded settings records and what the exports call them (only those seen)
NOTIFY_MODES = {3: "audio", 4: "vibration"}
AUDIO_STEPS = {0x04: 0.1, 0x14: 0.5}
SILENCE_SCOPES = {0x08: "all"}


def _listing(table):
    return ", ".join("0x%02X %s" % kv for kv in sorted(table.items()))

# insulin action curve (minutes) of a 0x5C entry by its flag byte & 0xCC (CareLink exports)
ACTION_CURVES = {0xC0: 180, 0x04: 240, 0x44: 300}


# --------------------------------------------------------------------------------------------
# number and time formats (as the vendor prints them)


def num(x):
    """Raw-Values number: shortest decimal, no trailing '.0' (2, 0.9, 39.175, -0.6)."""
    if x is None:
        return NULL
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def dbl(x):
    """Human column decimal as Java prints a double: 2.0, 0.05, 2.15."""
    return "" if x is None else repr(float(x))


def sig3(x):
    """Three significant digits, half-even on the decimal value, printed as a Java double
    (Daily Insulin Total: 27.65 -> 27.6, 29.95 -> 30.0, 31.075 -> 31.1, 0.15 -> 0.15, 2 -> 2.0)."""
    if x is None:
        return ""
    d = Decimal(repr(float(x)))
    if not d:
        return "0.0"
    return repr(float(d.quantize(Decimal(1).scaleb(d.adjusted() - 2), ROUND_HALF_EVEN)))


def hms(minutes):
    if minutes is None:
        return ""
    seconds = int(round(float(minutes) * 60))
    return "%02d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def ms(minutes):
    return None if minutes is None else int(round(float(minutes) * 60000))


def date_text(when):
    return "%d/%d/%02d" % (when.month, when.day, when.year % 100)


def stamp_text(when):
    return "%s %s" % (date_text(when), when.strftime("%H:%M:%S"))


def boolean(x):
    return None if x is None else ("true" if x else "false")


def raw(rec, part, index):
    """Byte ``index`` of a record part (``_head`` = opcode..date, ``_body`` = after the date)."""
    try:
        data = bytes.fromhex(rec.get(part) or "")
    except ValueError:
        return None
    return data[index] if index < len(data) else None


# --------------------------------------------------------------------------------------------
# the table


class V:
    """One Raw-Values key: ``fn(rec, ctx)`` gives the value (None: key left out), ``how`` says
    how (for the doc)."""

    def __init__(self, key, how, fn):
        self.key, self.how, self.fn = key, how, fn


class H:
    """One human column filled from the record."""

    def __init__(self, column, how, fn):
        self.column, self.how, self.fn = column, how, fn


class Row:
    """One vendor row a decoded record makes: ``raw_type``, its values, its human columns;
    ``when(rec, ctx)`` chooses among several candidate rows (None: always)."""

    def __init__(self, raw_type, values=(), human=(), when=None, note=""):
        self.raw_type, self.values, self.human, self.when, self.note = (
            raw_type, tuple(values), tuple(human), when, note)


class Entry:
    """decoded ``_type``(s) -> vendor rows; ``per_item`` = one row per item of ``data``."""

    def __init__(self, types, rows, note="", per_item=False, dated=None):
        self.types = (types,) if isinstance(types, str) else tuple(types)
        self.rows, self.note, self.per_item, self.dated = tuple(rows), note, per_item, dated


def f(key):
    return lambda rec, ctx: rec.get(key)


def const(value):
    return lambda rec, ctx: value


# who asked for it: bits 5-7 of the timestamp's day byte (t3), as the exports name them
REQUESTORS = {0: "pump", 2: "rf_diagnostic", 3: "paradigm link or b key", 5: "sensor"}


def requestor(rec, ctx):
    byte = raw(rec, "_date", 3)
    return None if byte is None else REQUESTORS.get(byte >> 5)


REQ = V("ACTION_REQUESTOR", "date byte t3 bits 5-7: %s (other values: key left out)"
         % ", ".join("%d %s" % kv for kv in sorted(REQUESTORS.items())), requestor)
CONC = V("CONCENTRATION", "`null` (the pump does not record it)", const(NULL))


def enable(key="enabled"):
    return V("ENABLE", "`%s` (true/false)" % key, lambda rec, ctx: boolean(rec.get(key)))


# the kind of a bolus: bits 5-7 of the timestamp's hour byte (t2), learned from the exports
# (x15 normal 1; x22+ normal 2, square 3, dual wave normal part 4, dual wave square part 5);
# other values: decided by the duration, not dual
BOLUS_KINDS = {1: ("normal", False), 2: ("normal", False), 3: ("square", False),
               4: ("normal", True), 5: ("square", True)}


def bolus_kind(rec):
    """("normal" | "square", part of a dual wave)."""
    byte = raw(rec, "_date", 2)
    if byte is not None and byte >> 5 in BOLUS_KINDS:
        return BOLUS_KINDS[byte >> 5]
    return ("square" if rec.get("duration") else "normal"), False


def _bolus_rows():
    def dual(rec, ctx):
        return boolean(bolus_kind(rec)[1])

    def kind(label):
        return lambda rec, ctx: ("Dual/" if bolus_kind(rec)[1] else "") + label

    common = [V("AMOUNT", "`amount` (U delivered)", f("amount")), CONC,
              V("PROGRAMMED_AMOUNT", "`programmed` (U)", f("programmed")),
              REQ]
    tail = [V("IS_DUAL_COMPONENT", "part of a dual wave (t2 bits 5-7 = 4 or 5)", dual),
            V("UNABSORBED_INSULIN_TOTAL", "`unabsorbed` (x23+; `null` on x22- pumps)",
              lambda rec, ctx: rec.get("unabsorbed", NULL))]
    human = [H("Bolus Volume Selected (U)", "`programmed`", lambda rec, ctx: dbl(rec.get("programmed"))),
             H("Bolus Volume Delivered (U)", "`amount`", lambda rec, ctx: dbl(rec.get("amount")))]
    normal = Row("BolusNormal", common + [V("ENABLE", "`false` on x15- pumps, `true` on x22+ (what every "
                                            "exported bolus says; meaning unknown)",
                                            lambda rec, ctx: "true" if history.as_model(ctx["model"]).generation >= 22
                                            else "false")] + tail,
                 [H("Bolus Type", "Normal / Dual/Normal", kind("Normal"))] + human,
                 when=lambda rec, ctx: bolus_kind(rec)[0] == "normal")
    square = Row("BolusSquare", common + [V("DURATION", "`duration` min -> ms",
                                            lambda rec, ctx: ms(rec.get("duration")))] + tail,
                 [H("Bolus Type", "Square / Dual/Square", kind("Square"))] + human +
                 [H("Programmed Bolus Duration (hh:mm:ss)", "`duration`",
                    lambda rec, ctx: hms(rec.get("duration")))],
                 when=lambda rec, ctx: bolus_kind(rec)[0] == "square")
    return [normal, square]


def _temp_rows():
    def minutes(rec, ctx):
        d = ctx.get("duration")
        return None if d is None else d.get("duration (min)")

    dur = V("DURATION", "`duration (min)` of the TempBasalDuration at the same second, in ms",
            lambda rec, ctx: ms(minutes(rec, ctx)))
    hdur = H("Temp Basal Duration (hh:mm:ss)", "TempBasalDuration", lambda rec, ctx: hms(minutes(rec, ctx)))
    absolute = Row("ChangeTempBasal", [V("RATE", "`rate` (U/h)", f("rate")), dur, REQ],
                   [H("Temp Basal Amount (U/h)", "`rate`", lambda rec, ctx: dbl(rec.get("rate"))),
                    H("Temp Basal Type", "Rate", const("Rate")), hdur],
                   when=lambda rec, ctx: rec.get("temp") != "percent")
    percent = Row("ChangeTempBasalPercent", [V("PERCENT_OF_RATE", "`rate` (%)", f("rate")), dur, REQ],
                  [H("Temp Basal Amount (U/h)", "`rate` (%)", lambda rec, ctx: num(rec.get("rate"))),
                   H("Temp Basal Type", "Percent", const("Percent")), hdur],
                  when=lambda rec, ctx: rec.get("temp") == "percent")
    return [absolute, percent]


def _new_time(rec, ctx):
    new = ctx.get("new_time")
    return None if new is None else new


def _epoch_ms(when):
    return int((when - datetime.datetime(1970, 1, 1)).total_seconds() * 1000)


def _wizard_rows():
    def bg_units(rec, ctx):
        return "mmol l" if rec.get("units") == "mmol" else "mg dl"

    vals = [V("BG_INPUT", "`bg`", f("bg")), V("BG_UNITS", "`units` (mg dl / mmol l)", bg_units),
            V("CARB_INPUT", "`carb_input`", f("carb_input")), V("CARB_UNITS", "`grams`", const("grams")),
            V("CARB_RATIO", "`carb_ratio`", f("carb_ratio")),
            V("INSULIN_SENSITIVITY", "`sensitivity`", f("sensitivity")),
            V("BG_TARGET_LOW", "`bg_target_low`", f("bg_target_low")),
            V("BG_TARGET_HIGH", "`bg_target_high`", f("bg_target_high")),
            V("BOLUS_ESTIMATE", "`bolus_estimate`", f("bolus_estimate")),
            V("CORRECTION_ESTIMATE", "`correction_estimate`", f("correction_estimate")),
            V("FOOD_ESTIMATE", "`food_estimate`", f("food_estimate")),
            V("UNABSORBED_INSULIN_TOTAL", "`unabsorbed_insulin_total`", f("unabsorbed_insulin_total")),
            V("UNABSORBED_INSULIN_COUNT", "entries of the 0x5C list written right after this wizard (0: none)",
              lambda rec, ctx: len(ctx.get("unabsorbed") or ())),
            REQ]
    human = [H("BWZ Estimate (U)", "`bolus_estimate`", lambda rec, ctx: dbl(rec.get("bolus_estimate"))),
             H("BWZ Target High BG (mg/dL)", "`bg_target_high`", lambda rec, ctx: num(rec.get("bg_target_high"))),
             H("BWZ Target Low BG (mg/dL)", "`bg_target_low`", lambda rec, ctx: num(rec.get("bg_target_low"))),
             H("BWZ Carb Ratio (grams)", "`carb_ratio`", lambda rec, ctx: num(rec.get("carb_ratio"))),
             H("BWZ Insulin Sensitivity (mg/dL)", "`sensitivity`", lambda rec, ctx: num(rec.get("sensitivity"))),
             H("BWZ Carb Input (grams)", "`carb_input`", lambda rec, ctx: num(rec.get("carb_input"))),
             H("BWZ BG Input (mg/dL)", "`bg`", lambda rec, ctx: num(rec.get("bg"))),
             H("BWZ Correction Estimate (U)", "`correction_estimate`",
               lambda rec, ctx: num(rec.get("correction_estimate"))),
             H("BWZ Food Estimate (U)", "`food_estimate`", lambda rec, ctx: num(rec.get("food_estimate"))),
             H("BWZ Active Insulin (U)", "`unabsorbed_insulin_total`",
               lambda rec, ctx: dbl(rec.get("unabsorbed_insulin_total")))]
    return [Row("BolusWizardBolusEstimate", vals, human)]


def _alarm_label(table, generic):
    def label(rec, ctx):
        code = rec.get("alarm_type")
        if code is None:
            return ""
        return "%s (%d)" % (table.get(code, generic), code)
    return label


def _alarm_module(rec, ctx):
    t2, t3 = raw(rec, "_date", 2), raw(rec, "_date", 3)
    return None if t2 is None or t3 is None else (t2 >> 5) << 3 | (t3 >> 5)


def _alarm_line(rec, ctx):
    b2, b3 = raw(rec, "_head", 2), raw(rec, "_head", 3)
    return None if b2 is None or b3 is None else b2 << 8 | b3


def _pattern_of(rec, ctx):
    """The basal pattern a record is about: t2 bits 5-7 (0 standard, 1 pattern a, 2 pattern b)."""
    t2 = raw(rec, "_date", 2)
    if t2 is None or t2 >> 5 >= len(PATTERN_RECORD_NAMES):
        return None
    return PATTERN_RECORD_NAMES[t2 >> 5]


def _byte1(table):
    return lambda rec, ctx: table.get(raw(rec, "_head", 1))


def _remote_id(n):
    spot = (1, 4, 8)[n]

    def fn(rec, ctx):
        body = bytes.fromhex(rec.get("_body") or "")
        if len(body) < spot + 3:
            return None
        return "%06d" % int.from_bytes(body[spot:spot + 3], "big")
    return fn


def _sensor_alarm_label(rec, ctx):
    code = rec.get("alarm_type")
    if code is None:
        return ""
    if code in SENSOR_ALERTS:
        return "Sensor Alert: %s (%d)" % (SENSOR_ALERTS[code], code)
    return "Sensor Alarm (%d)" % code


def _profile_rows(raw_type):
    vals = [V("PATTERN_NAME", "t2 bits 5-7 (0 standard, 1 pattern a, 2 pattern b)", _pattern_of),
            V("NUM_PROFILES", "entries of `profile`", lambda rec, ctx: len(rec.get("profile") or ())),
            REQ]
    return [Row(raw_type, vals)]


TABLE = [
    Entry("Bolus", _bolus_rows(),
          note="normal or square, and dual wave part, by the hour byte t2 bits 5-7 (x15 normal 1; "
               "x22+ normal 2, square 3, dual normal part 4, dual square part 5; other values: by the "
               "duration); a dual wave is two 0x01 records, so a normal and a square row"),
    Entry("Prime", [Row("Prime", [V("AMOUNT", "`amount`", f("amount")), CONC,
                                  V("PROGRAMMED_AMOUNT", "`fixed` (0 for a manual prime)", f("fixed")),
                                  V("PRIME_TYPE", "`type` (manual/fixed)", f("type")), REQ],
                        [H("Prime Type", "Manual / Fixed", lambda rec, ctx: str(rec.get("type", "")).capitalize()),
                         H("Prime Volume Delivered (U)", "`amount`", lambda rec, ctx: dbl(rec.get("amount")))])]),
    Entry("AlarmPump", [Row("AlarmPump", [V("RAW_TYPE", "`alarm_type`", f("alarm_type")),
                                          V("RAW_MODULE", "8 x (t2 bits 5-7) + (t3 bits 5-7)", _alarm_module),
                                          V("LINE_NUM", "bytes 2-3, big endian", _alarm_line)],
                            [H("Alarm", "label (code)", _alarm_label(PUMP_ALARMS, "Device Alarm"))])]),
    Entry("ResultDailyTotal", [Row("ResultDailyTotal", [V("AMOUNT", "`amount` (U)", f("amount")), CONC],
                                   [H("Daily Insulin Total (U)", "`amount`, 3 significant digits",
                                      lambda rec, ctx: sig3(rec.get("amount")))])],
          note="dated `valid_date` 00:00:00 (the day summed up); totals of 0 U are not exported",
          dated="valid_date"),
    Entry("ChangeBasalProfile_old_profile", _profile_rows("ChangeBasalProfilePatternPre")),
    Entry("ChangeBasalProfile_new_profile", _profile_rows("ChangeBasalProfilePattern")),
    Entry("CalBGForPH", [Row("CalBGForPH", [V("AMOUNT", "`amount` (mg/dL)", f("amount")), REQ],
                             [H("Sensor Calibration BG (mg/dL)", "`amount`", lambda rec, ctx: num(rec.get("amount")))])]),
    Entry("AlarmSensor", [Row("AlarmSensor", [V("ALARM_TYPE", "`alarm_type`", f("alarm_type")),
                                              V("AMOUNT", "`amount` (mg/dL; 0 when the alarm has none)",
                                                lambda rec, ctx: rec.get("amount", 0)),
                                              REQ],
                              [H("Alarm", "label (code)", _sensor_alarm_label)])]),
    Entry("ClearAlarm", [Row("ClearAlarm", [V("ALARM_TYPE", "`alarm_type`", f("alarm_type")), REQ])]),
    Entry("SelectBasalProfile", [Row("ChangeActiveBasalProfilePattern",
                                     [V("PATTERN_NAME", "`pattern`", f("pattern")),
                                      V("OLD_PATTERN_NAME", "`old_pattern`", f("old_pattern")), REQ])]),
    Entry("TempBasal", _temp_rows(), note="rate from 0x33, duration from the 0x16 at the same second"),
    Entry("TempBasalDuration", [Row("ChangeTempBasalNoRate",
                                    [V("DURATION", "`duration (min)` in ms",
                                       lambda rec, ctx: ms(rec.get("duration (min)"))), REQ])],
          note="only a 0x16 without its 0x33 rate record; otherwise consumed by TempBasal"),
    Entry("ChangeTime", [Row("ChangeTime",
                             [V("NEW_TIME", "the adjacent NewTimeSet's time, ms since 1970 written as if UTC",
                                lambda rec, ctx: None if ctx.get("new_time") is None else _epoch_ms(ctx["new_time"])),
                              REQ],
                             [H("New Device Time", "NewTimeSet time",
                                lambda rec, ctx: "" if ctx.get("new_time") is None else stamp_text(ctx["new_time"]))])],
          note="timestamp = the clock before the change; NewTimeSet is consumed"),
    Entry("LowBattery", [Row("JournalEntryPumpLowBattery")]),
    Entry("Battery", [Row("ChangeBatteryEnable", [enable()])]),
    Entry("PumpSuspend", [Row("ChangeSuspendEnable", [V("ENABLE", "`user_suspend`", const("user_suspend")),
                                                      REQ, V("PRE_ENABLE", "`null`", const(NULL))],
                              [H("Suspend", "Suspended", const("Suspended"))])]),
    Entry("PumpResume", [Row("ChangeSuspendEnable", [V("ENABLE", "`normal_pumping`", const("normal_pumping")),
                                                     REQ, V("PRE_ENABLE", "`null`", const(NULL))],
                             [H("Suspend", "Resume", const("Resume"))])]),
    Entry("Rewind", [Row("Rewind", [REQ], [H("Rewind", "Rewind", const("Rewind"))])]),
    Entry(("questionable22", "ClearSettings"), [Row("Clear", [REQ])]),
    Entry(("questionable23", "ChangeChildBlockEnable"), [Row("ChangeChildBlockEnable", [enable(), REQ])]),
    Entry(("questionable24", "ChangeMaxBolus"), [Row("ChangeMaxBolus", [V("AMOUNT", "`maxBolus`", f("maxBolus")), REQ])]),
    Entry("EnableDisableRemote", [Row("ChangeRemoteControlID", [enable(), REQ] + [
        V("REMOTE_CONTROL_ID_%d" % (n + 1), "body[%d:%d] big endian, 6 decimal digits" % (s, s + 3), _remote_id(n))
        for n, s in enumerate((1, 4, 8))])]),
    Entry("ChangeMaxBasal", [Row("ChangeMaxBasal", [V("RATE", "`maxBasal`", f("maxBasal")), REQ])]),
    Entry("SetBolusWizardEnabled", [Row("ChangeBolusWizardEnable", [enable(), REQ])]),
    Entry("LowReservoir", [Row("JournalEntryPumpLowReservoir", [V("AMOUNT", "`amount` (U)", f("amount")), REQ])]),
    Entry("ChangeParadigmLinkID", [Row("ChangeParadigmLinkID",
                                       [V("ENABLE", "`true`", const("true")), REQ] +
                                       [V("PARADIGM_LINK_ID_%d" % (n + 1), "`links[%d]`" % n,
                                          (lambda n: lambda rec, ctx: (rec.get("links") or [None] * 3)[n])(n))
                                        for n in range(3)])]),
    Entry(("BGReceived", "BGReceived512"), [Row("BGReceived",
                                                [V("AMOUNT", "`amount` (mg/dL)", f("amount")),
                                                 REQ,
                                                 V("PARADIGM_LINK_ID", "`link`", f("link"))],
                                                [H("BG Reading (mg/dL)", "`amount`", lambda rec, ctx: num(rec.get("amount"))),
                                                 H("Linked BG Meter ID", "#`link`",
                                                   lambda rec, ctx: "#%s" % rec["link"] if rec.get("link") else "")])]),
    Entry("JournalEntryMealMarker", [Row("JournalEntryMealMarker",
                                         [V("CARB_INPUT", "`carb_input`", f("carb_input")),
                                          V("CARB_UNITS", "`units`", f("units")),
                                          V("TYPE", "`null`", const(NULL)), REQ])]),
    Entry("JournalEntryExerciseMarker", [Row("JournalEntryExerciseMarker", [REQ])]),
    Entry("JournalEntryInsulinMarker", [Row("JournalEntryInsulinMarker", [REQ])]),
    Entry("JournalEntryOtherMarker", [Row("JournalEntryOtherMarker", [REQ])]),
    Entry("OldBolusWizardChange", [Row("ChangeBolusWizardSetup", [REQ])],
          note="NEW/OLD_CONFIG_DATUM are CareLink database ids (left out); the detail rows "
               "(ChangeCarbRatio..., ChangeBolusWizardSetupConfig) are not written"),
    Entry("ChangeBolusWizardSetup", [Row("ChangeSensorSetup", [REQ])],
          note="0x4F, which decocare names ChangeBolusWizardSetup, is x22's sensor setup"),
    Entry("ChangeSensorSetup2", [Row("ChangeSensorSetup2", [REQ])]),
    Entry("hack53", [Row("ChangeSensorAlarmSilenceConfig",
                         [V("DURATION", "body[0] minutes, in ms (one export example: 0xB4 = 3 h)",
                            lambda rec, ctx: ms(raw(rec, "_body", 0))),
                          V("SCOPE", "byte 1: %s (other values: key left out)" % _listing(SILENCE_SCOPES),
                            _byte1(SILENCE_SCOPES)), REQ])]),
    Entry("hack56", [Row("ChangeSensorRateOfChangeAlertSetup", [REQ])]),
    Entry("SettingSomething57", [Row("ChangeBolusScrollStepSize", [REQ])]),
    Entry(("BolusWizard", "BolusWizard512"), _wizard_rows()),
    Entry(("UnabsorbedInsulinBolus", "UnabsorbedInsulin512"),
          [Row("UnabsorbedInsulin", [V("INDEX", "position in the list", lambda rec, ctx: ctx["index"]),
                                     V("AMOUNT", "entry `amount` (U)", f("amount")),
                                     V("RECORD_AGE", "entry `age` (min)", f("age")),
                                     V("INSULIN_TYPE", "`null`", const(NULL)),
                                     V("INSULIN_ACTION_CURVE", "min, from the entry's flag byte bits 2-3 and 6-7 "
                                       "(0x04: 240, 0x44: 300, 0xC0: 180, the three the exports show; others: "
                                       "key left out)", lambda rec, ctx: ACTION_CURVES.get(ctx["flags"] & 0xCC))])],
          per_item=True,
          note="undated: one row per entry, timestamped with the BolusWizard written just before it "
               "(a list with no such wizard gives no row)"),
    Entry("SaveSettings", [Row("SaveSettings", [REQ])]),
    Entry(("questionable5e", "ChangeVariableBolusEnable"), [Row("ChangeVariableBolusEnable", [enable(), REQ])]),
    Entry("ChangeAudioBolus", [
        Row("ChangeAudioBolusEnable", [V("ENABLE", "byte 1 bit 0", lambda rec, ctx: None if raw(rec, "_head", 1) is None
                                         else boolean(raw(rec, "_head", 1) & 1)), REQ]),
        Row("ChangeAudioBolusStepSize", [V("AMOUNT", "byte 1 & 0xFE: %s U (other values: key left out)"
                                           % _listing(AUDIO_STEPS),
                                           lambda rec, ctx: AUDIO_STEPS.get((raw(rec, "_head", 1) or 0) & 0xFE)), REQ])],
          note="0x5F holds both: two rows at the same second"),
    Entry("ChangeBGReminderEnable", [Row("ChangeBGReminderEnable", [enable(), REQ])]),
    Entry("questionable61", [Row("ChangeAlarmClockEnable", [enable(), REQ])]),
    Entry("ChangeTempBasalType", [Row("ChangeTempBasalType",
                                      [V("TEMP_BASAL_TYPE", "`temp`: absolute -> insulin_units, percent -> percentage",
                                         lambda rec, ctx: {"absolute": "insulin_units", "percent": "percentage"}.get(
                                             rec.get("temp"))), REQ])]),
    Entry("ChangeAlarmNotifyMode", [Row("ChangeAlarmNotifyMode",
                                        [V("MODE", "byte 1: %s (other values: key left out)" % _listing(NOTIFY_MODES),
                                           _byte1(NOTIFY_MODES)), REQ])]),
    Entry("ChangeTimeDisplay", [Row("ChangeTimeDisplayFormat", [V("FORMAT", "`timeFormat`", f("timeFormat")), REQ])]),
    Entry("questionable65", [Row("ChangeReservoirWarningTime", [REQ])]),
    Entry("questionable66", [Row("ChangeBolusReminderEnable", [enable(), REQ])]),
    Entry("Ian69", [Row("BolusReminder", [REQ])]),
    Entry("questionable6f", [Row("ChangeCarbUnits", [REQ])]),
    Entry("BasalProfileStart", [Row("BasalProfileStart",
                                    [V("PATTERN_NAME", "t2 bits 5-7 (0 standard, 1 pattern a, 2 pattern b)",
                                       _pattern_of),
                                     V("PROFILE_INDEX", "`profile_index`", f("profile_index")),
                                     V("RATE", "`rate` (U/h)", f("rate")),
                                     V("START_TIME", "`offset` (ms after midnight)", f("offset")), REQ])]),
    Entry("ConnectDevicesOtherDevicesEnabled", [Row("ChangeWatchdogEnable", [enable(), REQ])]),
    Entry("ChangeOtherDeviceID", [Row("ChangeOtherDeviceID", [REQ])]),
    Entry("ChangeWatchdogMarriageProfile", [Row("ChangeWatchdogMarriageProfile", [REQ])]),
    Entry("DeleteOtherDeviceID", [Row("DeleteOtherDeviceID", [REQ])]),
    Entry("ChangeCaptureEventEnable", [Row("ChangeCaptureEventEnable", [enable(), REQ])]),
    Entry("SelfTest", [Row("SelfTest")]),
    Entry("ChangeBolusReminderTime", [Row("ChangeBolusReminderTime", [REQ])]),
    Entry("DeleteBolusReminderTime", [Row("DeleteBolusReminderTime", [REQ])]),
]

WIZARDS = ("BolusWizard", "BolusWizard512")
UNABSORBED = ("UnabsorbedInsulinBolus", "UnabsorbedInsulin512")
BY_TYPE = {t: e for e in TABLE for t in e.types}
# decoded types that become part of another record's row
COMPANIONS = {"NewTimeSet": "ChangeTime", "TempBasalDuration": "TempBasal"}
# decoded types with no row of their own, and why (for the doc)
NO_ROW = {"Sara6E": "daily summary (0x6E): CareLink exports no row for it",
          "Model522ResultTotals": "daily summary (0x6D): CareLink exports no row for it",
          "old6c": "daily summary (0x6C): CareLink exports no row for it",
          "NewTimeSet": "consumed by ChangeTime (NEW_TIME)"}


def table_markdown():
    """The table as markdown (docs/carelink-csv.md holds it between its markers)."""
    lines = ["| decoded `_type` | vendor Raw-Type | Raw-Values: key = how | human columns | note |",
             "|---|---|---|---|---|"]
    for entry in TABLE:
        types = " / ".join("`%s`" % t for t in entry.types)
        for row in entry.rows:
            values = "<br>".join("`%s` = %s" % (v.key, v.how) for v in row.values) or "(none)"
            human = "<br>".join("%s = %s" % (h.column, h.how) for h in row.human) or ""
            note = " ".join(x for x in (entry.note, row.note) if x)
            lines.append("| %s | %s | %s | %s | %s |" % (types, row.raw_type, values.replace("|", "/"),
                                                         human.replace("|", "/"), note.replace("|", "/")))
    lines += ["", "Decoded types with no row of their own:", ""]
    lines += ["* `%s`: %s" % kv for kv in NO_ROW.items()]
    lines += ["", "Alarm labels (column Alarm): pump alarms %s, other codes \"Device Alarm (N)\"; "
              "sensor alarms \"Sensor Alert: NAME (N)\" for %s, other codes \"Sensor Alarm (N)\"."
              % (", ".join("%d %s" % kv for kv in sorted(PUMP_ALARMS.items())),
                 ", ".join("%d %s" % kv for kv in sorted(SENSOR_ALERTS.items())))]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# walking the records


def _when(rec):
    text = rec.get("timestamp")
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def _chain(records):
    """Oldest-first list of (record, host) for every record, appended ones after their host."""
    out = []
    for rec in reversed(list(records)):
        out.append((rec, None))
        for sub in rec.get("appended") or ():
            out.append((sub, rec))
    return out


def events(records, model):
    """(when, Row, values dict, human dict, source record) for every vendor row, oldest first."""
    history.as_model(model)
    chain = _chain(records)
    dated = [(rec, _when(rec)) for rec, _ in chain]
    # companions at the same second
    by_second = {}
    for rec, when in dated:
        if when is not None:
            by_second.setdefault((rec["_type"], when), []).append(rec)
    used = set()
    # a 0x5C list belongs to the wizard written just before it; decocare hangs it on the next
    # record (possibly the next wizard), so: the last wizard before its host in page order
    unabsorbed_of, anchors = {}, {}
    last_wiz = prev_wiz = None
    for rec, host in chain:
        if host is None and rec["_type"] in WIZARDS:
            prev_wiz, last_wiz = last_wiz, rec
        elif host is not None and rec["_type"] in UNABSORBED:
            wiz = last_wiz
            if host is last_wiz and prev_wiz is not None and id(prev_wiz) not in unabsorbed_of \
                    and _close(prev_wiz, host, 900):
                # hung on the next wizard (the one it follows was not delivered); a list at the
                # end of a page hangs on its own wizard, the page's newest record
                wiz = prev_wiz
            if wiz is not None and id(wiz) not in unabsorbed_of and _when(wiz) is not None:
                unabsorbed_of[id(wiz)] = rec.get("data") or []
                anchors[id(rec)] = _when(wiz)
    # each TempBasal takes the TempBasalDuration of the same second (whichever comes first)
    durations = {}
    for rec, when in dated:
        if rec["_type"] == "TempBasal" and when is not None:
            comp = [r for r in by_second.get(("TempBasalDuration", when), []) if id(r) not in used]
            if comp:
                durations[id(rec)] = comp[0]
                used.add(id(comp[0]))
    out = []
    for i, (rec, host) in enumerate(chain):
        typ = rec["_type"]
        when = dated[i][1]
        if id(rec) in used:
            continue
        entry = BY_TYPE.get(typ)
        if entry is None:
            continue
        ctx = {"model": model}
        if typ == "TempBasal":
            ctx["duration"] = durations.get(id(rec))
        if typ == "ChangeTime":
            nxt = _next_of(chain, i, "NewTimeSet")
            if nxt is not None and id(nxt) not in used:
                ctx["new_time"] = _when(nxt)
                used.add(id(nxt))
        if typ in WIZARDS:
            ctx["unabsorbed"] = unabsorbed_of.get(id(rec), [])
        if entry.dated == "valid_date":
            if not rec.get("valid_date") or not rec.get("amount"):
                continue
            when = datetime.datetime.fromisoformat(rec["valid_date"])
        if entry.per_item:
            when = anchors.get(id(rec))
            if when is None:
                continue
            data = bytes.fromhex(rec.get("_head") or "")
            for n, item in enumerate(rec.get("data") or ()):
                ctx_n = dict(ctx, index=n, flags=data[4 + 3 * n] if 4 + 3 * n < len(data) else 0)
                for row in entry.rows:
                    out.append(_event(when, row, item, ctx_n, rec))
            continue
        if when is None:
            continue
        for row in entry.rows:
            if row.when is None or row.when(rec, ctx):
                out.append(_event(when, row, rec, ctx, rec))
    out.sort(key=lambda e: e[0])
    return out


def _close(a, b, seconds):
    ta, tb = _when(a), _when(b)
    return ta is not None and tb is not None and abs((tb - ta).total_seconds()) <= seconds


def _next_of(chain, i, typ):
    """The record right after position ``i`` (NewTimeSet follows its ChangeTime in page order)."""
    for rec, _ in chain[i + 1:i + 3]:
        if rec["_type"] == typ:
            return rec
    return None


def _event(when, row, rec, ctx, source):
    values = []
    for v in row.values:
        value = v.fn(rec, ctx)
        if value is not None:
            values.append((v.key, value if isinstance(value, str) else num(value)))
    human = {}
    for h in row.human:
        text = h.fn(rec, ctx)
        if text not in (None, ""):
            human[h.column] = text
    return when, row, values, human, source


def device_name(model):
    m = history.as_model(model)
    return ("Paradigm Revel - %s" if m.generation >= 23 else "Paradigm %s") % m.number


def rows(records, model, serial=None):
    """The data rows as dicts keyed by COLUMNS, oldest first."""
    device = device_name(model)
    out = []
    for n, (when, row, values, human, _) in enumerate(events(records, model), 1):
        r = dict.fromkeys(COLUMNS, "")
        r.update(human)
        r.update({"Index": str(n), "Date": date_text(when), "Time": when.strftime("%H:%M:%S"),
                  "Timestamp": stamp_text(when), "Raw-Type": row.raw_type,
                  "Raw-Values": ", ".join("%s=%s" % kv for kv in values), "Raw-Device Type": device})
        out.append(r)
    return out


def write(records, out, model, serial=None, exported=None):
    """Write the export for ``records`` (newest-first decocare list) to the text stream ``out``."""
    data = rows(records, model, serial)
    exported = exported or datetime.datetime.now()
    w = csv.writer(out, lineterminator="\n")
    out.write("Medtronic Diabetes CareLink Personal Data Export File (v1.0.1) \n")
    w.writerow(["PATIENT INFO"])
    w.writerow(["Name", ""])
    stamps = [datetime.datetime.strptime(r["Timestamp"], "%m/%d/%y %H:%M:%S") for r in data]
    if stamps:
        w.writerow(["Report Range", date_text(stamps[0]), "to", date_text(stamps[-1])])
    else:
        w.writerow(["Report Range", "", "to", ""])
    w.writerow(["DEVICE INFO"])
    changes = sum(1 for r in data if r["Raw-Type"] == "ChangeTime")
    w.writerow(["Pump:", device_name(model), "#%s" % serial if serial else "",
                "Time Changes: %d" % changes if changes else ""])
    w.writerow(["Data Exported on", "%s %s" % (date_text(exported),
                                               exported.strftime("%I:%M %p").lstrip("0"))])
    w.writerow(["DEVICE DATA (%d records)" % len(data)])
    if stamps:
        w.writerow(["Data Range", stamp_text(stamps[0]), "to", stamp_text(stamps[-1])])
    else:
        w.writerow(["Data Range", "", "to", ""])
    w.writerow(COLUMNS)
    for r in data:
        w.writerow([r[c] for c in COLUMNS])

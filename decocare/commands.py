"""The pump command catalogue: one row per pump command, and ``Pump``, which reads through a session.

One table (``COMMANDS``) holds every protocol fact about a pump command — opcode, the
TransmitPacket frames/retries/button bytes, reply size, which models have it, whether it changes
the pump or insulin delivery, its parameter encoder and reply decoder — so the session, the
emulator, the replay and ``docs/commands.md`` all read the same rows (spec protocol.md §4.2, §5,
§6, §7).  Opcodes mean different things on different models (0x40–0x44 are reads on a 508 and
SetRTC/Bolus on later pumps), so a row is always looked up *for a model*; a model that lacks a
command raises ``errors.Unsupported`` before anything is sent.

``Pump`` receives a session object; this module imports no layer above the codec.
"""
import datetime
import inspect
import logging
import math
from dataclasses import dataclass
from typing import Callable, Optional

from . import decoders as dec
from .errors import (NAK_REFUSED, BadInput, CommError, CRCError, ModelMismatch, NoResponse,
                     Refused, StickSilent, Unsupported)
from .frames import FRAMES_MANY, FRAMES_NONE, FRAMES_ONE, POWER_CONTROL, WAKE_BUTTON
from .pages import page_crc_ok
from .models import MAX_HISTORY_PAGES, Model, get_model
from .vocabulary import KEYS, PATTERN_NAMES, pattern_number

log = logging.getLogger(__name__)

READ_RETRIES = 2     # stick RF retries for reads (decocare and the vendor)
WRITE_RETRIES = 0    # every write: one TransmitPacket, no stick repeat (spec §7.3 rule 1)
READ_REFUSALS = 3    # tries for the model and page-range reads when the pump NAKs (Pump.asked_again)


@dataclass(frozen=True)
class Models:
    """Which pump generations (last two digits of the model: 8, 11, 12, 15, 22, 23 …) have a command."""
    low: int
    high: Optional[int] = None

    def __contains__(self, model):
        gen = model.generation
        return gen >= self.low and (self.high is None or gen <= self.high)

    def __str__(self):
        name = "508" if self.low == 8 else "x%d" % self.low
        if self.high is None:
            return name + "+"
        return name + " only" if self.high == self.low else "%s-x%d" % (name, self.high)


def since(generation):
    return Models(generation)


def only(generation):
    return Models(generation, generation)


@dataclass(frozen=True)
class Command:
    """One pump command; the attributes before ``models`` are the session contract."""
    name: str
    opcode: int
    frames: int          # TransmitPacket byte 11: 0 ACK only, 1 one frame, 2 multi-frame
    reply_size: int      # data bytes the session returns: 0 (ACK), 64, 192, 1024, 2048
    retries: int         # TransmitPacket byte 10 (stick RF retries)
    button: int          # TransmitPacket byte 9 (0x55 for PowerControl)
    write: bool          # changes pump state: sent exactly once, never retried
    doses: bool          # changes (or may change) insulin delivery
    models: Models
    kind: str            # "read", "page" (CRC16-checked page read) or "write"
    encoder: Optional[Callable] = None    # (model, **values) -> params bytes
    decoder: Optional[Callable] = None    # (data, model) -> JSON-able value
    doc: str = ""
    variant_of: Optional[str] = None      # the command this row stands for on older models

    @property
    def logical(self):
        """The name callers use whatever the model (``ReadSettings`` also means 0x91 on an x12)."""
        return self.variant_of or self.name


# --- parameter encoders ------------------------------------------------------------------------

def _number(value, what):
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise BadInput("%s must be a number, got %r" % (what, value))
    if math.isnan(number) or math.isinf(number):
        raise BadInput("%s must be a finite number, got %r" % (what, value))
    return number


def _integer(value, what, low, high):
    number = _number(value, what)
    if number != int(number) or not low <= number <= high:
        raise BadInput("%s must be a whole number from %d to %d, got %r" % (what, low, high, value))
    return int(number)


def _strokes(value, increment, per_unit, what, unit, model):
    """``value`` in pump strokes, refusing values that are not a multiple of the pump's step."""
    step = int(round(increment * per_unit))
    exact = value * per_unit
    strokes = int(round(exact))
    if abs(exact - strokes) > 1e-6 or strokes % step:
        lower = math.floor(exact / step + 1e-9) * step / per_unit
        raise BadInput("%s %s %s is not a multiple of the %s's %s %s step (nearest: %s or %s %s)"
                       % (what, _fmt(value), unit, model, _fmt(increment), unit, _fmt(lower),
                          _fmt(lower + increment), unit))
    return strokes


def _fmt(value):
    return ("%.3f" % value).rstrip("0").rstrip(".")


def _half_hours(duration):
    """Temp basal duration in minutes -> half-hours (multiple of 30, at most 24 h)."""
    minutes = _number(duration, "duration (minutes)")
    if minutes != int(minutes) or minutes % 30 or not 0 <= minutes <= 1440:
        raise BadInput("duration must be a multiple of 30 minutes from 0 to 1440 (24 h), got %r" % (duration,))
    return int(minutes) // 30


def p_power_control(model, minutes=10):
    """``[01, minutes]`` keeps the pump's radio on; minutes=0 -> ``[00, 00]`` radio off."""
    minutes = _integer(minutes, "radio minutes", 0, 255)
    return bytes([1, minutes]) if minutes else bytes([0, 0])


def p_set_rtc(model, clock):
    """``[h, min, s, yearHi, yearLo, month, day]`` from a naive datetime or ISO string (pump wall time)."""
    if isinstance(clock, str):
        try:
            clock = datetime.datetime.fromisoformat(clock)
        except ValueError:
            raise BadInput("clock must be an ISO date and time like 2024-05-01T13:45:00, got %r" % clock)
    if not isinstance(clock, datetime.datetime):
        raise BadInput("clock must be a date and time, got %r" % (clock,))
    if clock.tzinfo is not None:
        raise BadInput("clock must be the pump's local wall time without a zone, got %s" % clock.isoformat())
    if not 2000 <= clock.year <= 2099:
        raise BadInput("clock year must be 2000-2099, got %d" % clock.year)
    return bytes([clock.hour, clock.minute, clock.second, clock.year >> 8, clock.year & 0xFF,
                  clock.month, clock.day])


def p_temp_basal(model, rate, duration):
    """``[rateHi, rateLo, halfHours]``, rate in 0.025 U/h, a multiple of the model's basal step, 0-35 U/h."""
    rate = _number(rate, "temp basal rate (U/h)")
    if not 0 <= rate <= model.max_basal:
        raise BadInput("temp basal rate %s U/h is outside 0-%s U/h" % (_fmt(rate), _fmt(model.max_basal)))
    half_hours = _half_hours(duration)
    strokes = _strokes(rate, model.basal_increment(rate), model.basal_strokes, "temp basal rate",
                       "U/h", model)
    return bytes([strokes >> 8, strokes & 0xFF, half_hours])


def p_temp_basal_percent(model, percent, duration):
    """``[percent, halfHours]``, percent 0-100."""
    percent = _integer(percent, "temp basal percent", 0, 100)
    return bytes([percent, _half_hours(duration)])


def p_bolus(model, units):
    """x22 and older ``[strokes]`` at 10/U; x23+ ``[hi, lo]`` at 40/U; a multiple of the model's
    bolus step (0.1 U; x23+ 0.025/0.05/0.1 by size), more than 0 and at most 25 U."""
    units = _number(units, "bolus (U)")
    if not 0 < units <= model.max_bolus:
        raise BadInput("bolus %s U is outside 0-%s U (0 excluded)" % (_fmt(units), _fmt(model.max_bolus)))
    strokes = _strokes(units, model.bolus_increment(units), model.bolus_strokes, "bolus", "U", model)
    return bytes([strokes >> 8, strokes & 0xFF]) if model.larger else bytes([strokes])


def p_set_suspend(model, suspend):
    """``[1]`` suspend delivery, ``[0]`` resume."""
    if suspend not in (True, False, 0, 1):
        raise BadInput("suspend must be true (suspend) or false (resume), got %r" % (suspend,))
    return bytes([1 if suspend else 0])


def p_select_basal_profile(model, profile):
    """``[0 STD | 1 A | 2 B]``."""
    number = pattern_number(profile)
    if number is None and str(profile).strip() in ("0", "1", "2"):
        number = int(str(profile).strip())
    if number is None:
        raise BadInput("basal profile must be %s, got %r" % (", ".join(PATTERN_NAMES), profile))
    return bytes([number])


def p_keypad_push(model, key):
    """``[0 EASY | 1 ESC | 2 ACT | 3 UP | 4 DOWN]``, one key per command."""
    name = str(key).strip().upper()
    if name not in KEYS:
        raise BadInput("key must be one of %s, got %r" % (" ".join(KEYS), key))
    return bytes([KEYS.index(name)])


def p_history_page(model, page):
    """``[page]``, one byte."""
    return bytes([_integer(page, "history page", 0, 255)])


def p_page32(model, page):
    """Page number as 4 bytes big-endian (glucose, ISIG; VCNTR as decocare sends it)."""
    return _integer(page, "page", 0, 0xFFFFFFFF).to_bytes(4, "big")


def _date(value, what):
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise BadInput("%s must be a date like 2024-05-01, got %r" % (what, value))


def p_filter(model, begin, end):
    """``[yHi, yLo, month, day]`` of the first then the last day to look for."""
    out = b""
    for what, value in (("begin", begin), ("end", end)):
        day = _date(value, what)
        out += bytes([day.year >> 8, day.year & 0xFF, day.month, day.day])
    return out


# --- the table ---------------------------------------------------------------------------------

def _read(name, opcode, models, decoder, doc, variant_of=None, encoder=None):
    return Command(name, opcode, FRAMES_ONE, 64, READ_RETRIES, 0, False, False, models, "read",
                   encoder, decoder, doc, variant_of)


def _raw(name, opcode, models, doc, variant_of=None):
    return _read(name, opcode, models, dec.raw, doc + " (meaning not established: raw bytes)", variant_of)


def _long_read(name, opcode, models, decoder, reply_size, doc, variant_of=None, encoder=None, kind="read"):
    return Command(name, opcode, FRAMES_MANY, reply_size, READ_RETRIES, 0, False, False, models, kind,
                   encoder, decoder, doc, variant_of)


def _write(name, opcode, models, encoder, frames, doses, doc, button=0):
    return Command(name, opcode, frames, 0, WRITE_RETRIES, button, True, doses, models, "write",
                   encoder, None, doc)


X11, X12, X15, X22, X23 = since(11), since(12), since(15), since(22), since(23)

COMMANDS = (
    # radio and identity
    _write("PowerControl", POWER_CONTROL, X11, p_power_control, FRAMES_NONE, False,
           "Keep the pump's radio listening; the stick's wake-up burst takes ~17 s. minutes=0 switches "
           "the radio off (the stick gives no USB answer then) [OBS]", button=WAKE_BUTTON),
    _read("ReadPumpModel", 0x8D, X12, dec.pump_model, "Model number as text, e.g. \"523\" [OBS]"),
    _read("ReadPumpID", 0x71, X11, dec.pump_id, "Serial number, six ASCII digits [OBS]"),
    _read("ReadFirmwareVersion", 0x74, X11, dec.firmware, "Firmware text, e.g. \"VER 2.4A1.1\" [OBS]"),
    _read("ReadRTC", 0x70, X11, dec.rtc, "Pump clock as a naive ISO datetime (pump local time) [OBS]"),
    _write("SetRTC", 0x40, X12, p_set_rtc, FRAMES_NONE, False,
           "Set the pump clock (values: clock). 0x40 is ReadBasalTemp508 on a 508 [DECO]"),
    # state
    _read("ReadBatteryStatus", 0x72, X11, dec.battery, "{status normal/low, voltage} [OBS]"),
    _read("ReadRemainingInsulin", 0x73, X11, dec.reservoir,
          "Units left in the reservoir (x22-: d0-1 / 10; x23+: d2-3 / 40) [OBS]"),
    _read("ReadErrorStatus", 0x75, X11, dec.error_status, "Current error/alarm code, 0 = none [INF]"),
    _read("ReadRadioCtrlACL", 0x76, X11, dec.remote_ids, "Remote control IDs programmed in the pump [OBS]"),
    _read("ReadTotalsToday", 0x79, X11, dec.totals_today,
          "Insulin delivered today and yesterday (U). x23+: two 32-bit values in 0.025 U [INF: doubtful; "
          "decocare read 2x16-bit]"),
    _read("ReadPumpState", 0x83, X11, dec.raw, "Pump state; 03 seen on a normal pump (raw bytes) [OBS, meaning INF]"),
    _read("ReadPumpStatus", 0xCE, X15, dec.pump_status, "{status, bolusing, suspended} [OBS 515]"),
    _read("ReadBasalTemp", 0x98, X12, dec.basal_temp, "Running temp basal {temp, rate, duration (min left)} [OBS]"),
    # settings
    _read("ReadSettings", 0xC0, X15, dec.settings,
          "Settings block: maxBolus, maxBasal, selected_pattern, insulin_action_curve, temp_basal … "
          "(x23+ layout shifts max bolus/basal by one byte). Temp basal type from d14 as decocare: "
          "every captured pump with d14=1 (523/554/723) also answers ReadBasalTemp with type 1 (ecc1 "
          "reads d13, 0 everywhere). x23 d9 (insulin concentration) doubtful: the 554 capture has 1 [OBS]"),
    _read("ReadSettings512", 0x91, only(12), dec.settings,
          "x12 settings block (18 bytes; insulin action 6 h or 8 h) [ECC1, no capture]", variant_of="ReadSettings"),
    _raw("ReadSettings511", 0x7F, only(11), "x11 settings block [DECO]", variant_of="ReadSettings"),
    _read("ReadCarbUnits", 0x88, X12, dec.carb_units, "grams or exchanges [OBS]"),
    _read("ReadBGUnits", 0x89, X12, dec.bg_units, "mg/dL or mmol/L [OBS]"),
    _read("ReadCarbRatios", 0x8A, X12, dec.carb_ratios,
          "{units, first, schedule:[{start, ratio …}]}; x23+ scaled by units [OBS 515, x23 ECC1]"),
    _read("ReadInsulinSensitivities", 0x8B, X12, dec.sensitivities,
          "{units, first, sensitivities:[{start, sensitivity …}]} [OBS]"),
    _read("ReadBGTargets", 0x8C, only(12), dec.bg_targets_512, "x12 BG targets [start, target] [ECC1, no capture]"),
    _read("ReadBGTargets515", 0x9F, X15, dec.bg_targets, "{units, first, targets:[{start, low, high …}], raw} [OBS]",
          variant_of="ReadBGTargets"),
    _long_read("ReadProfile_STD512", 0x92, X12, dec.basal_profile, 192,
               "Standard basal profile [{i, start, minutes, rate}], 16-bit LE rates [OBS]"),
    _long_read("ReadProfile_A512", 0x93, X12, dec.basal_profile, 192, "Basal profile A (as STD) [OBS]"),
    _long_read("ReadProfile_B512", 0x94, X12, dec.basal_profile, 192, "Basal profile B (as STD) [OBS]"),
    _raw("ReadLanguage", 0x86, X12, "Display language [OBS 515]"),
    _raw("ReadBolusWizardSetupStatus", 0x87, X12, "Bolus wizard set up [OBS 515]"),
    _raw("ReadBGAlarmClocks", 0x8E, X12, "BG alarm clocks [OBS 515]"),
    _raw("ReadReservoirWarning", 0x8F, X12, "Low reservoir warning [OBS 515]"),
    _raw("ReadBGReminderEnable", 0x90, X12, "BG reminder enabled [OBS 515]"),
    _raw("ReadLogicLinkIDs", 0x95, X12, "Meter (Link) IDs [OBS 515]"),
    _raw("ReadBGAlarmEnable", 0x97, X12, "BG alarm enabled [OBS 515]"),
    _raw("ReadSavedSettingsDate", 0xC1, X15, "Date settings were saved [OBS 515]"),
    _raw("ReadContrast", 0xC3, X15, "Display contrast; the 512 refuses it (NAK 08) [OBS]"),
    _raw("ReadBolusReminderEnable", 0xC5, X15, "Bolus reminder enabled [OBS 515]"),
    _raw("ReadBolusReminders", 0xC6, X15, "Bolus reminders [OBS 515]"),
    _raw("ReadFactoryParameters", 0xC7, X15, "Factory parameters [OBS 515]"),
    # history
    _read("ReadCurPageNumber", 0x9D, X15,
          dec.cur_page_number, "Oldest history page that exists: pages 0..min(value, last) can be read "
          "(ecc1 reading; x12 refuses it) [OBS]"),
    _long_read("ReadHistoryData", 0x80, X11, dec.page, 1024, "History page (values: page), 16 frames, CRC16 [OBS]",
               encoder=p_history_page, kind="page"),
    # CGM
    _read("ReadCurGlucosePageNumber", 0xCD, X22, dec.cur_glucose_page,
          "{page, glucose, isig}: current glucose page and page counts [DECO, MMK]"),
    _long_read("ReadGlucoseHistory", 0x9A, X22, dec.page, 1024, "Glucose page (values: page, 4 bytes) [OBS]",
               encoder=p_page32, kind="page"),
    _long_read("ReadISIGHistory", 0x9B, X22, dec.page, 2048, "ISIG page (values: page), 32 frames [ECC1]",
               encoder=p_page32, kind="page"),
    _long_read("ReadVCNTRHistory", 0xD5, X23, dec.page, 1024,
               "VCNTR page (values: page); 4-byte page as decocare sends it, ecc1 sends 1 byte [unverified]",
               encoder=p_page32, kind="page"),
    _read("ReadCalibrationFactor", 0x9C, X22, dec.calibration_factor, "Sensor calibration factor [ECC1]"),
    _raw("ReadSensorSettings", 0x99, X22, "Sensor settings [DECO]"),
    _read("FilterGlucoseHistory", 0xA8, X22, dec.filter_pages,
          "Glucose pages holding dates begin..end (values: begin, end) [DECO]", encoder=p_filter),
    _read("FilterISIGHistory", 0xA9, X22, dec.filter_pages,
          "ISIG pages holding dates begin..end (values: begin, end) [DECO]", encoder=p_filter),
    _write("SetMaxBolus", 0x41, X12, None, FRAMES_ONE, False,
           "Set the max bolus [ECC1, MMK]; decocare never sends it. 0x41 is ReadTodayTotals508 on a 508"),
    _write("SetMaxBasal", 0x6E, X12, None, FRAMES_ONE, False,
           "Set the max basal [ECC1, MMK]; decocare never sends it"),
    _write("WriteGlucoseHistoryTimestamp", 0x28, X22, None, FRAMES_NONE, False,
           "Mark the glucose history (CGM log) [DECO]"),
    _raw("ReadOtherDevicesIDS", 0xF0, X23, "Other linked device IDs [MMK]"),
    # delivery writes (the write flow — checks, exactly-once send, verification — is elsewhere)
    _write("TempBasal", 0x4C, X12, p_temp_basal, FRAMES_ONE, True,
           "Absolute temp basal (values: rate U/h, duration min; duration 0 cancels) [OBS: 2.0 U/h 60 min -> 00 50 02]"),
    _write("TempBasalPercent", 0x69, X15, p_temp_basal_percent, FRAMES_ONE, True,
           "Percent temp basal (values: percent, duration min) [DECO; x15+ INF]"),
    _write("Bolus", 0x42, X11, p_bolus, FRAMES_ONE, True,
           "Normal bolus (values: units). 0x42 is ReadProfile_STD508 on a 508 [DECO, no capture]"),
    _write("SetSuspend", 0x4D, X11, p_set_suspend, FRAMES_NONE, True,
           "Suspend (suspend=true) or resume (false) delivery [OBS vendor]"),
    _write("SelectBasalProfile", 0x4A, X12, p_select_basal_profile, FRAMES_ONE, True,
           "Select basal profile STD, A or B (values: profile) [DECO]"),
    _write("KeypadPush", 0x5B, X11, p_keypad_push, FRAMES_NONE, True,
           "Press one key (values: key EASY/ESC/ACT/UP/DOWN); keys can confirm a bolus, so it counts as dosing [DECO]"),
    # the same answers on older models, under other opcodes
    _read("ReadBasalTemp511", 0x78, only(11), dec.basal_temp, "x11 temp basal [DECO, no capture]",
          variant_of="ReadBasalTemp"),
    _long_read("ReadProfile_STD511", 0x7A, only(11), dec.basal_profile, 192, "x11 STD profile [DECO, no capture]",
               variant_of="ReadProfile_STD512"),
    _long_read("ReadProfile_A511", 0x7B, only(11), dec.basal_profile, 192, "x11 profile A [DECO, no capture]",
               variant_of="ReadProfile_A512"),
    _long_read("ReadProfile_B511", 0x7C, only(11), dec.basal_profile, 192, "x11 profile B [DECO, no capture]",
               variant_of="ReadProfile_B512"),
    _raw("ReadRTC508", 0x20, only(8), "508 clock [DECO, no capture]", variant_of="ReadRTC"),
    _raw("ReadPumpID508", 0x21, only(8), "508 serial [DECO, no capture]", variant_of="ReadPumpID"),
    _raw("ReadBatteryStatus508", 0x22, only(8), "508 battery [DECO, no capture]", variant_of="ReadBatteryStatus"),
    _raw("ReadRemainingInsulin508", 0x23, only(8), "508 reservoir [DECO, no capture]",
         variant_of="ReadRemainingInsulin"),
    _raw("ReadFirmwareVersion508", 0x25, only(8), "508 firmware [DECO, no capture]", variant_of="ReadFirmwareVersion"),
    _raw("ReadErrorStatus508", 0x26, only(8), "508 error status [DECO, no capture]", variant_of="ReadErrorStatus"),
    _raw("ReadRadioCtrlACL508", 0x2E, only(8), "508 remote IDs [DECO, no capture]", variant_of="ReadRadioCtrlACL"),
    _raw("ReadBasalTemp508", 0x40, only(8), "508 temp basal; SetRTC on later pumps [DECO, no capture]",
         variant_of="ReadBasalTemp"),
    _raw("ReadTodayTotals508", 0x41, only(8), "508 totals; SetMaxBolus on later pumps [DECO, no capture]",
         variant_of="ReadTotalsToday"),
    _long_read("ReadProfile_STD508", 0x42, only(8), dec.raw, 192,
               "508 STD profile; Bolus on later pumps [DECO, size INF, no capture]", variant_of="ReadProfile_STD512"),
    _long_read("ReadProfile_A508", 0x43, only(8), dec.raw, 192, "508 profile A [DECO, size INF, no capture]",
               variant_of="ReadProfile_A512"),
    _long_read("ReadProfile_B508", 0x44, only(8), dec.raw, 192, "508 profile B [DECO, size INF, no capture]",
               variant_of="ReadProfile_B512"),
)

_BY_NAME = {row.name: row for row in COMMANDS}
_WRITE_OPCODES = frozenset(row.opcode for row in COMMANDS if row.write)


# --- lookups -----------------------------------------------------------------------------------

def _as_model(model):
    return model if isinstance(model, Model) else get_model(model)


def by_name(name):
    """The row named ``name`` (exact row name, whatever the model)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise BadInput("unknown pump command %r (python -m decocare.commands --doc lists them)" % (name,))


def resolve(name, model):
    """The row that carries command ``name`` on ``model`` (``ReadSettings`` is 0x91 on an x12);
    Unsupported when the model lacks it."""
    model = _as_model(model)
    rows = [row for row in COMMANDS if row.name == name or row.variant_of == name] or [by_name(name)]
    for row in rows:
        if model in row.models:
            return row
    raise Unsupported("%s is not supported by the %s (models: %s); nothing was sent"
                      % (name, model, ", ".join(str(row.models) for row in rows)), code=None)


def supported(name, model):
    try:
        resolve(name, model)
    except Unsupported:
        return False
    return True


def for_opcode(opcode, model):
    """The row ``opcode`` means on ``model`` (0x42 = Bolus on a 522, ReadProfile_STD508 on a 508).
    Without a model only an opcode with a single meaning resolves."""
    rows = [row for row in COMMANDS if row.opcode == opcode]
    if model is None:
        if len(rows) == 1:
            return rows[0]
        raise BadInput("opcode 0x%02X means different commands on different models (%s): give the model"
                       % (opcode, ", ".join(row.name for row in rows)) if rows else
                       "opcode 0x%02X is not a pump command decocare knows" % opcode)
    model = _as_model(model)
    for row in rows:
        if model in row.models:
            return row
    raise Unsupported("opcode 0x%02X is not a command decocare knows for the %s" % (opcode, model))


def encode(row, model, values):
    """Params bytes for ``row`` on ``model`` from keyword ``values`` (BadInput with the reason)."""
    if row.encoder is None:
        if values:
            raise BadInput("%s takes no values, got %s" % (row.name, ", ".join(sorted(values))))
        return b""
    try:
        inspect.signature(row.encoder).bind(model, **values)
    except TypeError:
        wanted = [p for p in inspect.signature(row.encoder).parameters if p != "model"]
        raise BadInput("%s takes values %s, got %s" % (row.name, ", ".join(wanted), ", ".join(sorted(values)) or "none"))
    return row.encoder(model, **values)


def params(name, model, **values):
    """Params bytes of command ``name`` for ``model``; Unsupported / BadInput before anything is sent."""
    model = _as_model(model)
    return encode(resolve(name, model), model, values)


# decoders whose layout is the same on every model: usable before the model is known
_MODEL_FREE = (dec.raw, dec.pump_model, dec.pump_id, dec.rtc, dec.battery, dec.firmware, dec.page)


def decode(name, data, model):
    """Decode reply ``data`` of command ``name`` on ``model`` (JSON-able).  ``model`` may be None
    for replies whose layout does not depend on it (ReadPumpModel, ReadRTC, …)."""
    if model is None:
        row = by_name(name)
        decoder = row.decoder or dec.raw
        if decoder not in _MODEL_FREE:
            raise BadInput("decoding %s needs the pump model" % name)
        return decoder(bytes(data), None)
    model = _as_model(model)
    return (resolve(name, model).decoder or dec.raw)(bytes(data), model)


# --- the pump, through a session ---------------------------------------------------------------

def _check_page(data):
    if not page_crc_ok(data):
        raise CRCError("page of %d bytes fails its CRC16 check" % len(data))


class Pump:
    """Reads a pump through ``session`` (anything with ``execute(command, params, validate)`` and
    ``wake(probe, power_on, minutes)``).  Writes are not sent from here: they need the write flow
    (pre-checks, exactly-once send, verification).

    The pump's own answer is the truth about its model: ``model`` is what ReadPumpModel said in
    this session (read once, before anything whose meaning or decoding depends on the model);
    a ``model`` given by the user is only a claim, checked against that answer (``ModelMismatch``
    when they differ).  Only the 508/511, which answer no ReadPumpModel, are taken on trust."""

    def __init__(self, session, model=None):
        self.session = session
        self.claimed = _as_model(model) if model is not None else None
        self._model = None
        self._unprobed = None       # (probe, power_on, params): the model came from the window
        if self.claimed is not None and self.claimed not in by_name("ReadPumpModel").models:
            self._model = self.claimed          # 508/511: nothing to ask

    @property
    def model(self):
        """The pump's Model as the pump reported it in this session."""
        if self._model is None:
            try:
                data = self.session.execute(by_name("ReadPumpModel"), b"")
            except Refused as exc:
                if exc.code != NAK_REFUSED:
                    raise
                raise BadInput("the pump refuses ReadPumpModel, as a 508 or 511 does: give its model "
                               "with --model 508 (or 511); nothing else was sent") from None
            self._confirm(data)
        return self._model

    @property
    def known_model(self):
        """The model as far as known without sending anything (reported, else claimed), or None."""
        return self._model or self.claimed

    def _confirm(self, data):
        reported = get_model(dec.pump_model(data, None))
        if self.claimed is not None and reported != self.claimed:
            raise ModelMismatch("--model %s disagrees with the pump, which reports model %s "
                                "(ReadPumpModel); nothing else was sent" % (self.claimed, reported))
        self._model = reported
        return reported

    def raw(self, name, params=None, **values):
        """The reply bytes of read ``name`` (``params``: raw parameter bytes instead of values);
        Unsupported/BadInput before anything is sent."""
        model = self.model
        row = resolve(name, model)
        if row.write or is_write_opcode(row.opcode):
            raise Refused("%s (0x%02X) changes the pump%s; it is never sent by a read (writes go "
                          "through the write tools); nothing was sent"
                          % (name, row.opcode, "" if row.write else " on other models"))
        data = encode(row, model, values) if params is None else bytes(params)
        validate = _check_page if row.kind == "page" else None
        return self._send(row, data, validate=validate)

    def read(self, name, **values):
        """The decoded reply of read ``name``."""
        model = self.model
        return (resolve(name, model).decoder or dec.raw)(self.raw(name, **values), model)

    def read_all(self):
        """Every read the model has (no pages, no reads needing values) by logical name; a command
        the pump refuses is reported as ``{"error", "code"}`` instead of stopping the others."""
        out = {}
        for row in reads_for(self.model):
            try:
                out[row.logical] = self.read(row.name)
            except Refused as exc:
                out[row.logical] = {"error": str(exc), "code": exc.code}
        return out

    # --- writes: only the write flow (decocare.dosing) sends them, after its checks ---------

    def packet(self, name, params):
        """The TransmitPacket write ``name`` would go out as (the session's one encoder)."""
        return self.session.packet(resolve(name, self.model), bytes(params))

    def write(self, name, params):
        """Send write ``name`` with ``params`` exactly once (the session never repeats a write):
        b"" on ACK, Refused on NAK, Uncertain when the answer is lost."""
        row = resolve(name, self.model)
        if not row.write:
            raise BadInput("%s is a read, not a write" % name)
        return self._send(row, bytes(params))

    @property
    def writes_sent(self):
        """Writes whose TransmitPacket went out in this session (see Session.writes_sent)."""
        return getattr(self.session, "writes_sent", 0)

    # --- pages ---------------------------------------------------------------------------

    def history_page(self, page):
        return self._page("ReadHistoryData", page)

    def glucose_page(self, page):
        return self._page("ReadGlucoseHistory", page)

    def isig_page(self, page):
        return self._page("ReadISIGHistory", page)

    def _page(self, name, page):
        """A page read: one opcode with one meaning on every model, so it needs no model read
        (a recorded download without ReadPumpModel replays); the model is checked when known."""
        row = by_name(name)
        known = self.known_model
        if known is not None and known not in row.models:
            raise Unsupported("%s is not supported by the %s; nothing was sent" % (name, known))
        return self._send(row, encode(row, known, {"page": page}), validate=_check_page)

    def cur_page_number(self):
        """ReadCurPageNumber's value (the oldest page that exists), or None when the pump has no
        such command (x12: NAK 0x08).  Asked even when the claimed model lacks it: a wrong claim
        must not shorten the history."""
        row = by_name("ReadCurPageNumber")
        if self._model is not None and self._model not in row.models:
            return None
        try:
            # asked again after a NAK only when the model is known to have the command (while
            # it is unknown, NAK 0x08 may mean an x12 that has none)
            tries = 1 if self._model is None else READ_REFUSALS
            return dec.cur_page_number(asked_again(lambda: self._send(row, b""),
                                                         tries), None)
        except Refused as exc:
            # NAK 0x08 means "no such command" only while the model is unknown: a pump whose
            # reported model has 0x9D refused it (an x12 never gets here), and taking that for
            # "no range" would let a NAKed page end the history early (issue 10's soak)
            if exc.code == NAK_REFUSED and self._model is None:
                return None
            raise

    def page_count(self):
        """How many history pages to read: min(ReadCurPageNumber, 35) + 1 (ecc1's reading, spec
        §5.3); a pump without 0x9D: its model's page count (x12: 32)."""
        value = self.cur_page_number()
        if value is None:
            return self.model.history_pages
        return min(value, MAX_HISTORY_PAGES - 1) + 1

    def ensure_awake(self, minutes=10, recall=True):
        """The model read doubles as the wake probe: ReadPumpModel (its answer is the model of this
        session, checked against a claim: ``ModelMismatch``); the session sends PowerControl
        [01, minutes] only when the pump does not answer, or first when its radio window is
        known to have lapsed, and from then on renews the window before a command that would
        outlast it (``Session.wake``).  508/511: ReadRTC probes.

        Inside a radio window known open in which ReadPumpModel already answered through this
        port (an earlier tool run: ``radiowindow``), nothing is sent here: that answer is the
        model and the first real read is the probe (``_send``); ``recall=False``: probe now."""
        power_on = by_name("PowerControl")
        power_params = p_power_control(None, minutes)
        probe = by_name("ReadPumpModel")
        if self._model is not None and self._model not in probe.models:
            probe = resolve("ReadRTC", self._model)
        remembered = self._remembered() if recall and probe.name == "ReadPumpModel" else None
        if remembered is not None:
            log.info("model %s remembered from this radio window: the first read is the probe",
                     remembered)
            self._model = remembered
            self._unprobed = (probe, power_on, power_params)
            self.session.arm(power_on, power_params)
            return None
        return self._probe(probe, power_on, power_params)

    def _probe(self, probe, power_on, power_params, known_off=False):
        try:
            data = self.session.wake(probe=probe, power_on=power_on, power_params=power_params,
                                     **({"known_off": True} if known_off else {}))
        except Refused:         # the pump answered, so it listens: ask again (a read, no harm)
            data = asked_again(lambda: self.session.execute(probe), tries=READ_REFUSALS - 1)
        if probe.name == "ReadPumpModel":
            self._confirm(data)
            remember = getattr(self.session, "remember_model", None)
            if remember is not None:
                remember(self._model.number)
        return data

    def _remembered(self):
        """The model the radio window remembers, unless a ``--model`` claim disagrees (then the
        pump is asked, and decides)."""
        recall = getattr(self.session, "remembered_model", None)
        number = recall() if recall is not None else None
        if number is None:
            return None
        try:
            model = get_model(number)
        except BadInput:
            return None
        return model if self.claimed is None or model == self.claimed else None

    def _send(self, row, params=b"", validate=None):
        """Every command goes out here.  The first after a model taken from the radio window is
        the wake probe: a read is sent once; no answer -> PowerControl, the model read again
        (it must be the one remembered), and the read again.  A write is never the probe: the
        model read goes first, as without a window."""
        if row.write:
            self.confirm_model(row.name)
        pending, self._unprobed = self._unprobed, None
        if pending is None:
            return self.session.execute(row, params, validate=validate)
        try:
            return self.session.execute(row, params, validate=validate, attempts=1)
        except StickSilent:
            raise
        except NoResponse as exc:
            log.info("no answer inside the remembered radio window (%s): waking the pump", exc)
        except CommError as exc:        # a broken answer: the pump listens; the usual tries
            log.info("the first read's answer was broken (%s): asking again", exc)
            return self.session.execute(row, params, validate=validate)
        remembered, self._model = self._model, None
        self.session.forget_window()
        self._probe(*pending, known_off=True)
        self._same_model(remembered, row.name)
        return self.session.execute(row, params, validate=validate)

    def confirm_model(self, before="the next command"):
        """A model taken from the radio window is confirmed by ReadPumpModel now (the write flow
        calls this before it counts a write as sent: a write is never the probe); nothing when
        the model was already read in this session."""
        pending, self._unprobed = self._unprobed, None
        if pending is not None:
            remembered, self._model = self._model, None
            self._probe(*pending)
            self._same_model(remembered, before)

    def _same_model(self, remembered, before):
        if self._model != remembered:      # commands were chosen for the remembered model
            raise ModelMismatch("the pump now reports model %s, not the %s its radio window "
                                "remembered; %s was not sent: run again"
                                % (self._model, remembered, before))


def asked_again(read, tries=None):
    """``read()``; a NAK is asked again, up to READ_REFUSALS tries in all.  Only for the reads
    a whole download depends on (the model, the page range): a NAK on a read changes
    nothing, and a pump that refused once (busy, a garbled packet) usually answers the next
    time -- one stray NAK must not end a 36-page download before it starts (issue 10's
    soak).  A pump that keeps refusing is believed (a 508's ReadPumpModel, an x12's range)."""
    tries = READ_REFUSALS if tries is None else tries
    for attempt in range(1, tries + 1):
        try:
            return read()
        except Refused as exc:
            if attempt == tries:
                raise
            log.info("refused (%s): asking again (%d/%d)", exc, attempt, tries)


def reads_for(model):
    """The plain reads (no values, not pages) ``model`` supports, in table order; never an opcode
    that is a write on another model (the 508's 0x40-0x42 are SetRTC/SetMaxBolus/Bolus later)."""
    model = _as_model(model)
    return [row for row in COMMANDS
            if row.kind == "read" and row.encoder is None and model in row.models
            and not is_write_opcode(row.opcode)]


def is_write_opcode(opcode):
    """True when ``opcode`` changes the pump on any model: a read-only tool never sends it."""
    return opcode in _WRITE_OPCODES


if __name__ == "__main__":      # python -m decocare.commands: the command line is decocare/tools/commands.py
    from decocare.tools.registry import launch
    launch("decocare.commands")

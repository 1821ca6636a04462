"""The emulated Paradigm pump: its state and how it executes each command (spec §5, §6, §7).

Which opcodes a model has comes from ``decocare.commands`` (the one command table); what
it answers comes from ``replies``; writes follow the real pump's rules (NAK 0x0C while a
bolus runs, 0x09 beyond its own limits or off the increment grid, 0x08 for what the model
lacks) and append the history records a real pump writes, so the next download shows them.
"""
import datetime

from .. import commands, history, records
from ..errors import NAK_BOLUSING, NAK_NO_PAGE, NAK_RANGE, NAK_REFUSED, DecocareError
from ..pages import DATA_SIZE, page_crc_ok
from ..models import get_model
from ..vocabulary import KEYS, PATTERN_NAMES, PATTERN_RECORD_NAMES
from . import replies

FRAME = 64

FIRMWARE = {"x12": "VER 1.3B1.1 ", "x15": "VER 2.1A1.1 ", "x22": "VER 2.4A1.1 ",
            "x23": "VER 2.4A1.1 ", "x51": "VER 2.6A1.1 "}


class Answer:
    """What the pump answered: kind ack / nak (code) / data (64-byte frames), plus the ledger
    entry of what it executed (None when it executed nothing)."""

    def __init__(self, kind, frames=(), code=None, write=False, entry=None):
        self.kind, self.frames, self.code, self.write, self.entry = kind, list(frames), code, write, entry


def split_frames(data):
    data = bytes(data)
    if len(data) <= FRAME:
        return [data + bytes(FRAME - len(data))]
    return [data[i:i + FRAME] for i in range(0, len(data), FRAME)]


class HistoryStore:
    """History pages, page 0 newest.  Seeded pages are served byte-identical; records the pump
    writes are appended after the last record of page 0 (found with ``history.walk``), opening a
    new page 0 when it is full, like the pump's own ring of pages."""

    def __init__(self, model, pages, counter=None):
        self.model = model
        pages = [bytes(p) for p in pages] or history.build_pages([], model)
        self.counter = len(pages) - 1 if counter is None else counter
        self.pages = pages[:model.history_pages]
        self._used = None

    def cur_page_number(self):
        return self.counter

    def page(self, n):
        return self.pages[n] if 0 <= n < len(self.pages) else None

    def _end_of_page0(self):
        data, end = self.pages[0][:DATA_SIZE], 0
        for item in history.walk(data, self.model):
            if item[0] == "unknown":
                return None
            end = item[1] + len(item[3])
        return end

    def append(self, raws):
        for raw in raws:
            if self._used is None:
                self._used = self._end_of_page0() if page_crc_ok(self.pages[0]) else None
            if self._used is None or self._used + len(raw) > DATA_SIZE:
                self.pages.insert(0, b"")
                self.pages = self.pages[:self.model.history_pages]
                self.counter += 1
                self._used = 0
                data = bytearray(DATA_SIZE)
            else:
                data = bytearray(self.pages[0][:DATA_SIZE])
            data[self._used:self._used + len(raw)] = raw
            self._used += len(raw)
            self.pages[0] = history.build_pages([bytes(data[:self._used])], self.model)[0]


class Pump:
    """State of one pump; ``execute`` is called by the stick for every command the pump hears."""

    def __init__(self, model, serial, clock, timing, pages=None, page_counter=None, records=None,
                 glucose=None, isig=None, firmware=None, start=None, awake=True):
        self.model = get_model(model)
        self.serial = str(serial)
        self.clock, self.timing = clock, timing
        self._t0 = clock.now()
        self.start = (start or datetime.datetime.now()).replace(microsecond=0)
        self.rtc_offset = datetime.timedelta(0)
        self.rf_until = self._t0 + 10 * 60 if awake else self._t0
        self.firmware = firmware or FIRMWARE[self.model.family]
        self.battery_low, self.battery_volts = False, 1.38
        self.reservoir = 142.5 if self.model.reservoir_units < 300 else 241.3
        self.suspended = False
        self.bolus = None            # dict(units, start, end) while one is delivered
        self.temp = None             # dict(type, rate | percent, end)
        self.delivered_today = 0.0
        self.yesterday_total = 38.6
        self.remote_ids = []
        self.settings = dict(auto_off_hours=0, alarm=4, audio_bolus_enable=0, audio_bolus_step=5,
                             variable_bolus_enable=1, max_bolus=10.0, max_basal=2.0, time_format=0,
                             insulin_concentration=0, patterns_enabled=1, selected_pattern=0,
                             rf_enable=1, block_enable=0, temp_basal_type=0, temp_basal_percent=100,
                             paradigm_enabled=1, insulin_action_hours=4, low_reservoir_warn_type=0,
                             low_reservoir_warn_point=20, keypad_lock=0)
        self.profiles = {0: [(0, 0.8), (4, 0.65), (14, 0.95), (22, 0.85), (44, 0.8)],
                         1: [(0, 1.0), (16, 1.2)], 2: []}
        self.carb_units, self.bg_units = 1, 1
        self.carb_ratios = [(0, 10.0), (22, 12.0)]
        self.sensitivities = [(0, 50), (12, 45)]
        self.bg_targets = [(0, 100, 120), (44, 110, 130)]
        self.calibration_factor = 1.0
        if pages is None:
            pages = history.build_pages(records or [], self.model)
        self.history = HistoryStore(self.model, pages, page_counter)
        self.glucose = dict(glucose or {})       # absolute page number -> 1024 bytes
        self.isig = dict(isig or {})              # absolute page number -> 2048 bytes
        self.boluses = []                         # (pump time, units) for insulin on board

    # --- clock and radio -----------------------------------------------------------------

    def now(self):
        """The pump's wall clock: runs from ``start``, moved by SetRTC."""
        elapsed = datetime.timedelta(seconds=int(self.clock.now() - self._t0))
        return self.start + elapsed + self.rtc_offset

    def awake(self, at):
        return at < self.rf_until

    def wake(self, at, minutes):
        self.rf_until = at + minutes * 60

    def sleep(self):
        self.rf_until = self.clock.now()

    def bolusing(self):
        return self.bolus is not None and self.clock.now() < self.bolus["end"]

    def temp_basal(self):
        if self.temp is None:
            return None
        left = self.temp["end"] - self.clock.now()
        if left <= 0:
            self.temp = None
            return None
        return dict(self.temp, seconds_left=left)

    def totals(self):
        return self.delivered_today, self.yesterday_total

    def glucose_page_number(self):
        return max(self.glucose) if self.glucose else 0

    def entry(self, opcode, params, name=None, **extra):
        """A ledger entry for a command executed now."""
        if name is None:
            name = commands.for_opcode(opcode, self.model).name
        out = {"op": name, "opcode": "0x%02X" % opcode, "params": bytes(params).hex(),
               "time": self.now().isoformat()}
        out.update(extra)
        return out

    # --- executing a command -----------------------------------------------------------

    def execute(self, opcode, params, multi=False):
        try:
            row = commands.for_opcode(opcode, self.model)
        except DecocareError:
            return Answer("nak", code=NAK_REFUSED)
        name = row.variant_of or row.name
        if row.write:
            handler = WRITES.get(row.name)
            if handler is None:
                return Answer("nak", code=NAK_REFUSED, write=True)
            code, extra = handler(self, bytes(params))
            if code is not None:
                return Answer("nak", code=code, write=True)
            entry = self.entry(opcode, params, row.name, doses=row.doses, **extra)
            return Answer("ack", write=True, entry=entry)
        data = self._read(name, bytes(params))
        if isinstance(data, int):
            return Answer("nak", code=data)
        if data is None:
            return Answer("nak", code=NAK_REFUSED)
        return Answer("data", split_frames(data), entry=self.entry(opcode, params, row.name))

    def _read(self, name, params):
        if name == "ReadHistoryData":
            n = params[0] if params else 0
            page = self.history.page(n)
            if page is None:
                return NAK_REFUSED if n >= self.model.history_pages else NAK_NO_PAGE
            return page
        if name in ("ReadGlucoseHistory", "ReadISIGHistory"):
            n = int.from_bytes(params[:4], "big") if params else 0
            store = self.glucose if name == "ReadGlucoseHistory" else self.isig
            return store.get(n, NAK_NO_PAGE)
        return replies.build(name, self)

    # --- history -------------------------------------------------------------------------

    def record(self, name, when=None, **fields):
        """Append one history record; record types without a date (0x5C) get no timestamp."""
        dated = records.BY_NAME[name].date
        raw = history.encode_record(name, self.model, timestamp=(when or self.now()) if dated else None,
                                    **fields)
        self.history.append([raw])

    def unabsorbed(self, now):
        """Insulin on board as the pump lists it before a bolus (x23+): linear over the action time."""
        action = self.settings["insulin_action_hours"] * 60
        out = []
        for when, units in self.boluses:
            age = int((now - when).total_seconds() // 60)
            if 0 <= age < action:
                left = round(units * (1 - age / action) * 40) / 40
                if left > 0:
                    out.append({"amount": min(left, 255 / 40.0), "age": min(age, 1023)})
        return out


# --- writes: (pump, params) -> (NAK code or None, ledger extras) ---------------------------

def _grid(value, step):
    return abs(round(value / step) * step - value) < 1e-6


def w_temp_basal(p, params):
    if len(params) != 3:
        return NAK_RANGE, None
    rate, half_hours = ((params[0] << 8) | params[1]) / 40.0, params[2]
    if p.settings["temp_basal_type"] != 0:
        return NAK_REFUSED, None       # a pump set to percent temp basals refuses 0x4C [MMK]
    if half_hours > 48 or rate > p.settings["max_basal"] or not _grid(rate, p.model.basal_increment(rate)):
        return NAK_RANGE, None
    return _set_temp(p, {"type": "absolute", "rate": rate}, half_hours,
                     dict(temp="absolute", rate=rate)), {"rate": rate, "duration": half_hours * 30}


def w_temp_basal_percent(p, params):
    if len(params) != 2 or params[0] > 200 or params[1] > 48:
        return NAK_RANGE, None
    percent, half_hours = params
    return _set_temp(p, {"type": "percent", "percent": percent}, half_hours,
                     dict(temp="percent", rate=percent)), {"percent": percent, "duration": half_hours * 30}


def _set_temp(p, temp, half_hours, fields):
    now = p.now()
    p.temp = dict(temp, end=p.clock.now() + half_hours * 1800) if half_hours else None
    p.record("TempBasal", now, **fields)
    p.record("TempBasalDuration", now, **{"duration (min)": half_hours * 30})
    return None


def w_bolus(p, params):
    strokes_per_unit = p.model.bolus_strokes
    if len(params) != (2 if p.model.larger else 1):
        return NAK_RANGE, None
    units = int.from_bytes(params, "big") / float(strokes_per_unit)
    if p.bolusing():
        return NAK_BOLUSING, None
    if p.suspended:
        return NAK_REFUSED, None
    if not 0 < units <= p.settings["max_bolus"] or not _grid(units, p.model.bolus_increment(units)) \
            or units > p.reservoir:
        return NAK_RANGE, None
    now, t = p.now(), p.clock.now()
    unabsorbed = p.unabsorbed(now) if p.model.larger else []
    if unabsorbed:
        p.record("UnabsorbedInsulinBolus", None, data=unabsorbed)
    fields = dict(amount=units, programmed=units, duration=0)
    if p.model.larger:
        fields["unabsorbed"] = round(sum(e["amount"] for e in unabsorbed) * 40) / 40
    p.record("Bolus", now, **fields)
    p.bolus = {"units": units, "end": t + units * p.timing.bolus_per_unit}
    p.boluses.append((now, units))
    p.reservoir = round((p.reservoir - units) * 40) / 40
    p.delivered_today += units
    return None, {"units": units, "seconds": units * p.timing.bolus_per_unit}


def w_set_suspend(p, params):
    if len(params) != 1 or params[0] > 1:
        return NAK_RANGE, None
    suspend = params[0] == 1
    if suspend and p.bolusing():
        return NAK_BOLUSING, None      # approximated: what a real pump does here is not captured
    changed = suspend != p.suspended
    if changed:
        p.suspended = suspend
        p.record("PumpSuspend" if suspend else "PumpResume")
    return None, {"suspend": suspend, "changed": changed}


def w_set_rtc(p, params):
    if len(params) != 7:
        return NAK_RANGE, None
    h, m, s, yhi, ylo, month, day = params
    try:
        new = datetime.datetime((yhi << 8) | ylo, month, day, h, m, s)
    except ValueError:
        return NAK_RANGE, None
    old = p.now()
    p.record("ChangeTime", old)
    p.rtc_offset += new - old
    p.record("NewTimeSet", new)
    return None, {"clock": new.isoformat(), "was": old.isoformat()}


def w_keypad(p, params):
    if len(params) != 1 or params[0] > 4:
        return NAK_RANGE, None
    return None, {"key": KEYS[params[0]]}


def w_select_profile(p, params):
    if len(params) != 1 or params[0] > 2:
        return NAK_RANGE, None
    p.settings["selected_pattern"] = params[0]
    p.record("SelectBasalProfile", pattern=PATTERN_RECORD_NAMES[params[0]])
    return None, {"profile": PATTERN_NAMES[params[0]]}


def w_glucose_timestamp(p, params):
    return None, {}


WRITES = {
    "TempBasal": w_temp_basal,
    "TempBasalPercent": w_temp_basal_percent,
    "Bolus": w_bolus,
    "SetSuspend": w_set_suspend,
    "SetRTC": w_set_rtc,
    "KeypadPush": w_keypad,
    "SelectBasalProfile": w_select_profile,
    "WriteGlucoseHistoryTimestamp": w_glucose_timestamp,
}

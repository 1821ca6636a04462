"""What each day delivered, computed from decoded history records only.

Input: decocare's newest-first list of records (``decocare.history.merge(...)``: dicts with
``_type``, a naive ISO ``timestamp`` in pump time, the decoded fields, undated records nested in
``appended``) and optionally glucose records (``decocare.cgm``: ``name``, ``date``, ``sgv``).

The basal step line is rebuilt from the records, in pump time, and says where it does not know:

* scheduled rate: the ``rate`` of the latest BasalProfileStart (x23+ pumps write one at every
  schedule segment and whenever basal restarts).  Before the first one the scheduled rate is
  **unknown** -- x22 and older pumps never write them, so their scheduled basal is unknown
  throughout; nothing is invented;
* temp basal: TempBasal (``absolute`` U/h, or ``percent`` of the scheduled rate) with the
  TempBasalDuration of the same timestamp; it ends after its duration, or earlier at a new temp
  or a cancel (duration 0).  A percent temp over an unknown schedule is unknown;
* PumpSuspend: 0 U/h until PumpResume (a temp's clock keeps running meanwhile);
* stopped: a Rewind, or a pump alarm that stops delivery (code 3, 4, 5, 6, 62: battery,
  no delivery, auto off, empty reservoir), gives 0 U/h until basal restarts: the next
  BasalProfileStart or PumpResume (what x23+ pumps write), or a Bolus (delivery evidently works
  again).  When the records hold no BasalProfileStart at all, the restart is not logged, so the
  stopped span is unknown rather than 0;
* a clock change (ChangeTime + NewTimeSet) makes the span between the old and the new clock
  unknown (time skipped or lived twice); a silence of more than ``MAX_GAP`` between two records
  is a gap in the data (unknown); before the first and after the last record there is no data
  (the day's end counts as covered when the pump's daily total for it, written at 00:00 of the
  next day, is in the data).

Boluses: ``amount`` is what was delivered.  A normal bolus counts at its time; a square bolus
(and the square half of a dual wave: two Bolus records) is spread from its timestamp at its
programmed rate ``programmed / duration`` for ``amount / rate`` minutes (a square bolus stopped
early delivered less than programmed, at the programmed rate), and split at midnight.

Daily totals: ResultDailyTotal ``amount`` for ``valid_date`` (the day it sums up) is set beside
our basal + bolus of that day; primes are shown, not counted (they fill the tubing/cannula).
"""
import datetime

DAY = datetime.timedelta(days=1)
MAX_GAP = datetime.timedelta(hours=24)

# AlarmPump codes after which the pump delivers nothing until it restarts (spec history.md 0x06)
STOP_ALARMS = {3: "battery out limit", 4: "no delivery", 5: "battery depleted", 6: "auto off",
               62: "empty reservoir"}
PUMP_ALARMS = dict(STOP_ALARMS)
PUMP_ALARMS.update({16: "device reset", 17: "device reset (battery)", 21: "device reset (battery)",
                    61: "reprogram error"})

# step-line sources; a segment with rate None is unknown
SCHEDULED, TEMP, PERCENT, SUSPENDED, STOPPED = "scheduled", "temp", "percent", "suspended", "stopped"
UNKNOWN_SCHEDULE, CLOCK, GAP, NO_DATA = "unknown schedule", "clock change", "gap", "no data"
DAILY_TOTAL_TYPES = ("ResultDailyTotal", "old6c", "Model522ResultTotals", "Sara6E")
METER_TYPES = ("BGReceived", "BGReceived512", "CalBGForPH")


def when(text):
    return datetime.datetime.fromisoformat(text)


def as_date(value):
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])


def _r3(x):
    return None if x is None else round(x, 3) + 0.0     # + 0.0: no -0.0


class Segment:
    """One step of the basal line: [start, end) at ``rate`` U/h (None: unknown), and why."""
    __slots__ = ("start", "end", "rate", "source")

    def __init__(self, start, end, rate, source):
        self.start, self.end, self.rate, self.source = start, end, rate, source

    @property
    def hours(self):
        return (self.end - self.start).total_seconds() / 3600

    @property
    def units(self):
        return None if self.rate is None else self.rate * self.hours

    def clip(self, start, end):
        s, e = max(self.start, start), min(self.end, end)
        return Segment(s, e, self.rate, self.source) if s < e else None

    def to_json(self):
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "rate": self.rate, "source": self.source, "units": _r3(self.units)}

    def __repr__(self):
        return "Segment(%s, %s, %r, %r)" % (self.start.time(), self.end.time(), self.rate, self.source)


def dated(records):
    """Every record of the list (``appended`` ones too) that has a timestamp, in list order."""
    out = []
    for rec in records:
        if "timestamp" in rec:
            out.append(rec)
        for inner in rec.get("appended", ()):
            if "timestamp" in inner:
                out.append(inner)
    return out


def _chronological(records):
    """Oldest first, in the order decocare's newest-first list gives (stable for equal times:
    page order), the ChangeTime/NewTimeSet pairs taken out (returned apart)."""
    chain = list(reversed(records))
    events, clocks, i = [], [], 0
    while i < len(chain):
        rec = chain[i]
        if rec["_type"] == "ChangeTime" and "timestamp" in rec:
            nxt = chain[i + 1] if i + 1 < len(chain) else None
            if nxt is not None and nxt["_type"] == "NewTimeSet" and "timestamp" in nxt:
                clocks.append((when(rec["timestamp"]), when(nxt["timestamp"])))
                i += 2
                continue
        if rec["_type"] in ("ChangeTime", "NewTimeSet"):
            i += 1
            continue
        if "timestamp" in rec and rec["_type"] not in DAILY_TOTAL_TYPES:
            events.append(rec)
        i += 1
    events.sort(key=lambda r: r["timestamp"])      # stable: already in order unless fed unsorted
    return events, clocks


class Timeline:
    """The basal step line of all the records, and what the data covers."""

    def __init__(self, records):
        events, self.clock_changes = _chronological(records)
        self.has_schedule_records = any(r["_type"] == "BasalProfileStart" for r in events)
        self.notes = []          # (start, end, text)
        self.segments = []
        if not events:
            self.start = self.end = None
            return
        times = [when(r["timestamp"]) for r in events]
        self.start, self.end = times[0], times[-1]
        # a daily total (00:00 of the next day) proves the pump reached that midnight: every
        # event before it is in the data, so the state holds till then
        for rec in records:
            if rec.get("_type") == "ResultDailyTotal" and "timestamp" in rec:
                t = when(rec["timestamp"])
                if self.end < t <= self.end + MAX_GAP:
                    self.end = t
        self._build(events, times)
        self._blank_clock_changes()

    # ----------------------------------------------------------------------------------------
    def _build(self, events, times):
        durations = {}
        for rec in events:
            if rec["_type"] == "TempBasalDuration":
                durations.setdefault(rec["timestamp"], []).append(rec.get("duration (min)"))
        # the segment starts the BasalProfileStart records show: offset (ms) -> [(time, rate)];
        # the pump writes none while a temp basal runs, so a percent temp reads them here
        self._learned = {}
        for rec, t in zip(events, times):
            if rec["_type"] == "BasalProfileStart" and rec.get("offset") is not None:
                self._learned.setdefault(int(rec["offset"]), []).append((t, rec.get("rate")))
        self._offsets = sorted(self._learned)
        sched = None
        temp = None          # {"kind", "rate", "end"} (end None: duration not recorded)
        suspended = False
        stopped = None       # why delivery stopped (rewind / alarm), or None
        prev = self.start

        def rate_now(t):
            if suspended:
                return 0.0, SUSPENDED
            if stopped:
                return (0.0, STOPPED) if self.has_schedule_records else (None, STOPPED)
            if temp is not None and (temp["end"] is None or t < temp["end"]):
                if temp["end"] is None:
                    return None, TEMP
                if temp["kind"] == "percent":
                    base = self._scheduled_at(t, sched)
                    return (None if base is None else base * temp["rate"] / 100.0), PERCENT
                return temp["rate"], TEMP
            return (sched, SCHEDULED) if sched is not None else (None, UNKNOWN_SCHEDULE)

        def emit(a, b):
            while a < b:
                cut = b
                if temp is not None and temp["end"] is not None and a < temp["end"] < b:
                    cut = temp["end"]
                if temp is not None and temp["kind"] == "percent" and not suspended and not stopped:
                    boundary = self._next_boundary(a)
                    if boundary is not None and boundary < cut:
                        cut = boundary
                rate, source = rate_now(a)
                self._add(a, cut, rate, source)
                a = cut

        for rec, t in zip(events, times):
            if t - prev > MAX_GAP:
                self._add(prev, t, None, GAP)
                self.notes.append((prev, t, "no records from %s to %s: a gap in the data"
                                   % (prev.isoformat(), t.isoformat())))
            else:
                emit(prev, t)
            prev = t
            kind = rec["_type"]
            if kind == "BasalProfileStart":
                sched, stopped = rec.get("rate"), None
            elif kind == "TempBasal":
                pending = durations.get(rec["timestamp"])
                minutes = pending.pop(0) if pending else None
                if minutes == 0:
                    temp = None
                elif minutes is None:
                    temp = {"kind": rec.get("temp"), "rate": rec.get("rate"), "end": None}
                    self.notes.append((t, t, "%s: TempBasal without its TempBasalDuration: "
                                       "rate unknown until the next temp basal" % rec["timestamp"]))
                else:
                    temp = {"kind": rec.get("temp"), "rate": rec.get("rate"),
                            "end": t + datetime.timedelta(minutes=minutes)}
            elif kind == "PumpSuspend":
                suspended = True
            elif kind == "PumpResume":
                suspended, stopped = False, None
            elif kind == "Rewind":
                stopped = "rewind"
            elif kind == "AlarmPump" and rec.get("alarm_type") in STOP_ALARMS:
                stopped = STOP_ALARMS[rec["alarm_type"]]
            elif kind == "Bolus" and stopped:
                stopped = None
        emit(prev, self.end)

    def _scheduled_at(self, t, current):
        """The scheduled rate at ``t`` while no BasalProfileStart is written (a percent temp):
        the segment of the schedule the BasalProfileStart offsets show (latest rate seen for it
        before ``t``, else the first seen after); ``current`` when there are none."""
        if not self._offsets:
            return current
        ms = (t - datetime.datetime.combine(t.date(), datetime.time())).total_seconds() * 1000
        below = [o for o in self._offsets if o <= ms]
        seen = self._learned[below[-1] if below else self._offsets[-1]]
        before = [rate for when_, rate in seen if when_ <= t]
        return before[-1] if before else seen[0][1]

    def _next_boundary(self, t):
        """The next schedule segment start after ``t`` (of the offsets seen), or None."""
        if not self._offsets:
            return None
        midnight = datetime.datetime.combine(t.date(), datetime.time())
        for day in (midnight, midnight + DAY):
            for o in self._offsets:
                at = day + datetime.timedelta(milliseconds=o)
                if at > t:
                    return at
        return None

    def _add(self, start, end, rate, source):
        if start >= end:
            return
        last = self.segments[-1] if self.segments else None
        if last is not None and last.end == start and last.rate == rate and last.source == source:
            last.end = end
        else:
            self.segments.append(Segment(start, end, rate, source))

    def _blank_clock_changes(self):
        """The span between a ChangeTime's old clock and its NewTimeSet is unknown."""
        for old, new in self.clock_changes:
            lo, hi = min(old, new), max(old, new)
            if lo == hi:
                continue
            out = []
            for seg in self.segments:
                for piece in (seg.clip(seg.start, lo), seg.clip(hi, seg.end)):
                    if piece is not None:
                        out.append(piece)
            out.append(Segment(max(lo, self.start or lo), min(hi, self.end or hi), None, CLOCK))
            self.segments = sorted((s for s in out if s.start < s.end), key=lambda s: s.start)

    def day(self, date):
        """The step line of one day: segments clipped to it, 'no data' where uncovered."""
        start = datetime.datetime.combine(date, datetime.time())
        end = start + DAY
        out, at = [], start
        for seg in self.segments:
            piece = seg.clip(start, end)
            if piece is None:
                continue
            if piece.start > at:
                out.append(Segment(at, piece.start, None, NO_DATA))
            out.append(piece)
            at = piece.end
        if at < end:
            out.append(Segment(at, end, None, NO_DATA))
        return out


# --------------------------------------------------------------------------------------------
# boluses and the rest


def bolus_spans(records):
    """Every Bolus record as a delivery: {time, start, end, amount, programmed, duration, type,
    rate (U/h, extended only), cancelled}; ``end`` = start for a normal bolus."""
    out = []
    for rec in dated(records):
        if rec["_type"] != "Bolus":
            continue
        t = when(rec["timestamp"])
        amount = float(rec.get("amount") or 0)
        programmed = float(rec.get("programmed") or 0)
        duration = int(rec.get("duration") or 0)
        item = {"time": t, "start": t, "end": t, "amount": amount, "programmed": programmed,
                "duration": duration, "type": "normal", "rate": None,
                "cancelled": programmed > amount}
        if duration > 0:
            per_minute = (programmed or amount) / duration
            minutes = amount / per_minute if per_minute > 0 else duration
            item.update(type="square", rate=per_minute * 60,
                        end=t + datetime.timedelta(minutes=min(minutes, duration)))
        out.append(item)
    out.sort(key=lambda b: b["time"])
    return out


def bolus_in(bolus, start, end):
    """Units of ``bolus`` delivered in [start, end)."""
    if bolus["end"] == bolus["start"]:
        return bolus["amount"] if start <= bolus["start"] < end else 0.0
    s, e = max(bolus["start"], start), min(bolus["end"], end)
    if s >= e:
        return 0.0
    whole = (bolus["end"] - bolus["start"]).total_seconds()
    return bolus["amount"] * (e - s).total_seconds() / whole


def _event(t, kind, text, **extra):
    return dict({"time": t, "kind": kind, "text": text}, **extra)


def events(records):
    """Alarms, primes, rewinds, suspends/resumes, reservoir/battery warnings, clock changes,
    temp basals set/cancelled: [{time, kind, text, ...}] oldest first."""
    out = []
    for rec in dated(records):
        kind, t = rec["_type"], when(rec["timestamp"])
        if kind == "AlarmPump":
            code = rec.get("alarm_type")
            out.append(_event(t, "alarm", "pump alarm %s%s" % (
                code, " (%s)" % PUMP_ALARMS[code] if code in PUMP_ALARMS else ""),
                code=code, stops=code in STOP_ALARMS))
        elif kind == "AlarmSensor":
            out.append(_event(t, "sensor alarm", rec.get("alarm_description") or "sensor alarm",
                              code=rec.get("alarm_type")))
        elif kind == "Prime":
            out.append(_event(t, "prime", "prime %s %.1f U" % (rec.get("type"), rec.get("amount") or 0),
                              amount=float(rec.get("amount") or 0), prime=rec.get("type")))
        elif kind == "Rewind":
            out.append(_event(t, "rewind", "rewind"))
        elif kind == "PumpSuspend":
            out.append(_event(t, "suspend", "suspend"))
        elif kind == "PumpResume":
            out.append(_event(t, "resume", "resume"))
        elif kind == "LowReservoir":
            out.append(_event(t, "warning", "low reservoir %s U" % rec.get("amount")))
        elif kind == "LowBattery":
            out.append(_event(t, "warning", "low battery"))
        elif kind in ("ChangeTime", "NewTimeSet"):
            out.append(_event(t, "clock", "clock was %s" % rec["timestamp"] if kind == "ChangeTime"
                              else "clock set to %s" % rec["timestamp"]))
    out.sort(key=lambda e: e["time"])
    return out


def carbs(records):
    """Carbs entered: BolusWizard ``carb_input`` > 0 and meal markers."""
    out = []
    for rec in dated(records):
        if rec["_type"] in ("BolusWizard", "BolusWizard512", "JournalEntryMealMarker"):
            value = rec.get("carb_input") or 0
            if value:
                out.append({"time": when(rec["timestamp"]), "carbs": value, "source": rec["_type"]})
    out.sort(key=lambda c: c["time"])
    return out


def meter_bgs(records, glucose=()):
    """BGs: the wizard's ``bg`` (its units), meter BGs received (BGReceived, CalBGForPH; mg/dL)
    and CalBGForGH of glucose pages: [{time, bg, units, source}]."""
    out = []
    for rec in dated(records):
        kind = rec["_type"]
        if kind in ("BolusWizard", "BolusWizard512") and rec.get("bg"):
            out.append({"time": when(rec["timestamp"]), "bg": rec["bg"],
                        "units": rec.get("units", "mgdl"), "source": kind})
        elif kind in METER_TYPES and rec.get("amount"):
            out.append({"time": when(rec["timestamp"]), "bg": rec["amount"], "units": "mgdl",
                        "source": kind})
    for rec in glucose:
        if rec.get("name") == "CalBGForGH" and rec.get("date") and rec.get("amount"):
            out.append({"time": when(rec["date"]), "bg": rec["amount"], "units": "mgdl",
                        "source": "CalBGForGH"})
    out.sort(key=lambda b: b["time"])
    return out


def sensor(glucose):
    """Sensor glucose of glucose pages: [{time, sgv}] oldest first (dated values only)."""
    out = [{"time": when(r["date"]), "sgv": r["sgv"]} for r in glucose
           if r.get("date") and r.get("sgv") is not None]
    out.sort(key=lambda s: s["time"])
    return out


def daily_totals(records):
    """{valid_date: [amount, ...]} of the pump's ResultDailyTotal records."""
    out = {}
    for rec in dated(records):
        if rec["_type"] == "ResultDailyTotal" and rec.get("valid_date") and "amount" in rec:
            out.setdefault(as_date(rec["valid_date"]), []).append(float(rec["amount"]))
    return out


# --------------------------------------------------------------------------------------------
# days


class Day:
    """One day's step line, deliveries, inputs, events and summary (see ``summary``)."""

    def __init__(self, date, segments, boluses, carbs, bgs, sensor, events, pump_totals,
                 clock_changes, notes):
        self.date = date
        self.start = datetime.datetime.combine(date, datetime.time())
        self.end = self.start + DAY
        self.segments, self.boluses, self.carbs, self.bgs = segments, boluses, carbs, bgs
        self.sensor, self.events, self.pump_totals = sensor, events, pump_totals
        self.clock_changes, self.notes = clock_changes, notes
        self.summary = self._summary()

    def _summary(self):
        basal = sum(s.units for s in self.segments if s.rate is not None)
        unknown = sum(s.hours for s in self.segments if s.rate is None and s.source != NO_DATA) * 60
        uncovered = sum(s.hours for s in self.segments if s.source == NO_DATA) * 60
        normal = sum(b["in_day"] for b in self.boluses if b["type"] == "normal")
        extended = sum(b["in_day"] for b in self.boluses if b["type"] == "square")
        bolus = normal + extended
        total = basal + bolus
        complete = unknown == 0 and uncovered == 0 and not self.clock_changes
        pump = self.pump_totals[0] if self.pump_totals else None
        why = []
        if uncovered:
            why.append("no data for %s" % _hm(uncovered))
        if unknown:
            causes = sorted({s.source for s in self.segments if s.rate is None and s.source != NO_DATA})
            why.append("basal unknown for %s (%s)" % (_hm(unknown), ", ".join(causes)))
        if self.clock_changes:
            why.append("clock changed")
        return {
            "date": self.date.isoformat(),
            "complete": complete,
            "incomplete_because": why,
            "basal": _r3(basal), "basal_unknown_minutes": round(unknown, 1),
            "no_data_minutes": round(uncovered, 1),
            "bolus": _r3(bolus), "bolus_normal": _r3(normal), "bolus_extended": _r3(extended),
            "boluses": len(self.boluses),
            "total": _r3(total),
            "carbs": sum(c["carbs"] for c in self.carbs),
            "primes": _r3(sum(e["amount"] for e in self.events if e["kind"] == "prime")),
            "pump_total": pump,
            "pump_totals": list(self.pump_totals),
            "difference": _r3(total - pump) if pump is not None else None,
            "difference_meaningful": pump is not None and complete,
            "notes": list(self.notes),
        }

    def to_json(self):
        def iso(items):
            return [dict(i, **{k: i[k].isoformat() for k in ("time", "start", "end") if k in i})
                    for i in items]
        return {"summary": self.summary, "segments": [s.to_json() for s in self.segments],
                "boluses": iso(self.boluses), "carbs": iso(self.carbs), "bgs": iso(self.bgs),
                "sensor": iso(self.sensor), "events": iso(self.events)}

    def summary_text(self):
        """The summary as a few lines (the picture's text box, the docs)."""
        s = self.summary
        lines = ["%s  total %.2f U = basal %.2f U + bolus %.2f U" % (
                     s["date"], s["total"], s["basal"], s["bolus"])
                 + ("" if s["complete"] else " (incomplete)"),
                 "boluses: %d, normal %.2f U, extended %.2f U; carbs %s g; primes %.1f U (not counted)"
                 % (s["boluses"], s["bolus_normal"], s["bolus_extended"], s["carbs"], s["primes"])]
        if s["pump_total"] is None:
            lines.append("pump's daily total: not in the data")
        elif s["difference_meaningful"]:
            lines.append("pump's daily total %.2f U, ours %.2f U, difference %+.2f U"
                         % (s["pump_total"], s["total"], s["difference"]))
        elif s["no_data_minutes"]:
            lines.append("pump's daily total %.2f U, ours %.2f U (only what the data covers): "
                         "difference not meaningful" % (s["pump_total"], s["total"]))
        else:
            lines.append("pump's daily total %.2f U, ours %.2f U known, difference not meaningful "
                         "(pump - our boluses = %.2f U: basal + what is unknown)"
                         % (s["pump_total"], s["total"], s["pump_total"] - s["bolus"]))
        for why in s["incomplete_because"]:
            lines.append("incomplete: " + why)
        return lines


def _hm(minutes):
    minutes = int(round(minutes))
    return "%d h %02d min" % (minutes // 60, minutes % 60) if minutes >= 60 else "%d min" % minutes


def record_days(records):
    """The days that hold at least one dated history record (daily totals' stamps excluded)."""
    return sorted({when(r["timestamp"]).date() for r in dated(records)
                   if r["_type"] not in DAILY_TOTAL_TYPES})


def compute(records, glucose=(), days=None):
    """[Day] for ``days`` (dates; default every day with a record), oldest first."""
    records = list(records)
    glucose = list(glucose or ())
    timeline = Timeline(records)
    spans = bolus_spans(records)
    all_events = events(records)
    all_carbs, all_bgs, all_sensor = carbs(records), meter_bgs(records, glucose), sensor(glucose)
    totals = daily_totals(records)
    wanted = sorted(set(as_date(d) for d in days)) if days is not None else record_days(records)
    out = []
    for date in wanted:
        start = datetime.datetime.combine(date, datetime.time())
        end = start + DAY

        def inside(items):
            return [i for i in items if start <= i["time"] < end]
        boluses = []
        for b in spans:
            part = bolus_in(b, start, end)
            if part > 0 or (b["amount"] == 0 and start <= b["start"] < end):
                boluses.append(dict(b, in_day=part))
        clocks = [(o, n) for o, n in timeline.clock_changes
                  if min(o, n) < end and max(o, n) >= start]
        notes = [text for a, b, text in timeline.notes if a < end and b >= start]
        if not timeline.has_schedule_records and records:
            notes.append("no BasalProfileStart records (x22 and older pumps write none): the "
                         "scheduled basal rate is unknown")
        out.append(Day(date, timeline.day(date), boluses, inside(all_carbs), inside(all_bgs),
                       inside(all_sensor), inside(all_events), totals.get(date, []), clocks, notes))
    return out

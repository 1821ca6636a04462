"""decocare history as Nightscout treatments and entries, and the upload to a Nightscout site.

* ``treatments(records, zone, skipped=None)``: Nightscout treatments (a list, oldest first) from
  decocare's decoded history (one newest-first list, ``history.merge``); ``zone`` is the pump's
  local zone (a tzinfo) that gives the naive pump times their offset.  ``MAPPING`` is the one
  table of what becomes what: the converter takes every ``eventType`` from it and
  ``mapping_markdown()`` (docs/nightscout.md) prints it.
* ``entries(glucose_records, zone)``: sensor glucose (decoded glucose-page records) as Nightscout
  ``sgv`` entries; ``sgv_entry`` is the shared core (mm-openaps' glucose.json uses it too).
* ``upload(url, secret, collection, docs, dry_run=False, log=None)``: Nightscout API v1 with
  ``API-SECRET: sha1hex(secret)``; asks the site what it holds over the documents' time span
  first and never sends a document of the same time and type again (``dedupe_key``), so a run
  repeated, or interrupted and re-run, leaves every treatment on the site exactly once.

Nightscout itself keeps one treatment per ``created_at`` + ``eventType`` (its POST is an upsert
on those two), so two documents with the same pair would overwrite each other there: the
converter never emits two (boluses of the same second are one treatment, see MAPPING).

Standard library only (urllib).  Tested against tests/nightscout_fake.py, not a real Nightscout.
"""
import datetime
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request

from ..errors import BadInput, UploadError

ENTERED_BY = "decocare"
DEVICE = "decocare"
WIZARD_WINDOW = datetime.timedelta(seconds=60)     # a BolusWizard and the bolus it programmed
BG_SAME_READING = datetime.timedelta(minutes=12)   # the wizard offers the meter BG of the last 12 min
MGDL_PER_MMOL = 18.0182
BATCH = 50          # documents per POST
PAGE = 1000         # documents per GET of what the site holds
TIMEOUT = 30        # seconds per request

# ---------------------------------------------------------------------------------------------
# the one mapping table: (key, decocare records, when, Nightscout eventType, fields, why)

MAPPING = (
    ("meal-bolus", "Bolus (+ BolusWizard/BolusWizard512)",
     "a wizard record 0-60 s before the bolus (no other wizard between) with carb_input > 0",
     "Meal Bolus",
     "insulin (U delivered), programmed, carbs (the wizard's carb_input, on the first part only), "
     "bolusType, duration (min, square part)",
     "oref0 lib/bolus.js and ecc1: a wizard bolus with carbs; oref0 only counts wizard carbs when "
     "a bolus follows, so a wizard without a bolus gives no treatment"),
    ("correction-bolus", "Bolus", "any other bolus", "Correction Bolus",
     "insulin, programmed, bolusType, duration (square part)",
     "ecc1/oref0's eventType for a bolus without carbs; oref0 and Nightscout count `insulin` of "
     "Meal/Correction Bolus (not of \"Combo Bolus\", which oref0 ignores)"),
    ("bolus-parts", "Bolus",
     "several bolus records of the same second; or a square bolus starting within "
     "1 min + 1 min per programmed U after a normal one (a dual wave)",
     "(as the bolus)",
     "same second: ONE treatment, insulin = the sum, bolusType \"dual\", parts [{type, insulin, "
     "programmed, duration}]; dual wave of two times: two treatments, bolusType \"dual-normal\" / "
     "\"dual-square\", the square part with the normal part's eventType, both with the same notes",
     "Nightscout keeps one treatment per created_at + eventType: two of the same second would "
     "overwrite each other (oref0#443). A record with nothing programmed and nothing delivered "
     "(0/0 U) is no treatment"),
    ("temp-basal", "TempBasal + TempBasalDuration (same timestamp)", "duration > 0", "Temp Basal",
     "duration (min); absolute temps: absolute and rate (U/h); percent temps: percent = "
     "pump % - 100 (Nightscout's percent is the change: basal x (100 + percent) / 100) and no "
     "rate (oref0 reads rate as U/h)",
     "ecc1/oref0 pair the two records by timestamp; a TempBasal without its duration is not "
     "converted (reported)"),
    ("temp-basal-cancel", "TempBasal + TempBasalDuration", "duration 0", "Temp Basal",
     "duration 0 (no rate)", "a zero-duration Temp Basal ends the running one in Nightscout"),
    ("suspend", "PumpSuspend", "", "Temp Basal",
     "absolute 0, rate 0, duration (min) until the next PumpResume; without one, until the "
     "newest record of the history (notes say so)",
     "Nightscout draws basal and computes delivery from Temp Basal treatments; \"Suspend Pump\" "
     "would only be a marker and the basal line would show insulin that was not delivered"),
    ("resume", "PumpResume", "", "Temp Basal",
     "duration 0; or, when a temp basal started before the suspend would still run, that temp's "
     "rate for the minutes it has left",
     "ends the zero temp of the suspend; the interrupted temp continues after a resume as oref0 "
     "(lib/iob/history.js suspend windows) reads pump history"),
    ("site-change", "Prime", "type fixed (cannula fill)", "Site Change",
     "notes (prime amount); no insulin (a prime does not reach the body's insulin on board)",
     "oref0 mm-format-ns-treatments: a fixed prime is a Site Change; a manual (tubing) prime is "
     "no treatment"),
    ("insulin-change", "Rewind", "", "Insulin Change", "-",
     "oref0 mm-format-ns-treatments: a rewind is a reservoir (insulin) change"),
    ("bg-check", "BGReceived, BGReceived512, CalBGForPH, BolusWizard bg",
     "one treatment per reading: a value equal to one already seen 12 min or less before is "
     "the same reading (the meter BG arrives as BGReceived + CalBGForPH; the wizard offers the "
     "meter BG of the last 12 min); a wizard bg 0 is no reading",
     "BG Check",
     "glucose (mg/dl; mmol/L wizard values x 18.0182, rounded), glucoseType \"Finger\", "
     "units \"mg/dl\", sources (every record of the reading)",
     "ecc1 BGCapture/BGReceived and oref0 CalBGForPH -> BG Check"),
    ("carbs", "JournalEntryMealMarker", "carbs in grams", "Carb Correction", "carbs",
     "oref0 lib/meal/history.js counts meal markers; exchanges are not converted (reported)"),
)
EVENT = {key: event for key, _, _, event, _, _ in MAPPING}
COMMON = ("created_at (the pump's local time with the zone's offset), timestamp (the same), "
          "enteredBy \"decocare\", decocareType (the decocare record type; for several, the first and "
          "`sources`; never `_type`, which oref0 takes for a pump-history record), notes where something needs saying")


def mapping_markdown():
    """The mapping table as markdown (docs/nightscout.md holds this text)."""
    lines = ["| decocare records | when | Nightscout eventType | fields | why |",
             "|---|---|---|---|---|"]
    for _, source, when, event, fields, why in MAPPING:
        lines.append("| %s | %s | %s | %s | %s |" % tuple(
            cell.replace("|", "\\|") or "-" for cell in (source, when, event, fields, why)))
    lines += ["", "Every treatment also has: %s." % COMMON, ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# times


def aware(text, zone):
    """A naive pump-local ISO time in ``zone`` (a time already carrying an offset is kept).  A
    time the zone skips (a pump clock not yet set forward) is moved by the gap, which names the
    same instant; an ambiguous one (set back) is its first (daylight) occurrence."""
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
        try:
            from dateutil import tz as dtz
            when = dtz.resolve_imaginary(when)
        except ImportError:        # pragma: no cover - dateutil is a dependency
            pass
    return when


def epoch_ms(when):
    return int(round(when.timestamp() * 1000))


def _minutes(delta):
    return round(delta.total_seconds() / 60, 2)


# ---------------------------------------------------------------------------------------------
# treatments


def _walk(records):
    """Every record, nested ``appended`` ones included."""
    for rec in records:
        yield rec
        for sub in rec.get("appended") or ():
            yield from _walk([sub])


class _Builder:
    def __init__(self, zone, skipped):
        self.zone, self.skipped, self.docs = zone, skipped, []

    def skip(self, rec, why):
        if self.skipped is not None:
            self.skipped.append({"_type": rec.get("_type"), "timestamp": rec.get("timestamp"),
                                 "why": why})

    def doc(self, key, rec, when, **fields):
        stamp = aware(when, self.zone).isoformat()
        out = {"eventType": EVENT[key], "created_at": stamp, "timestamp": stamp,
               "enteredBy": ENTERED_BY, "decocareType": rec["_type"]}
        out.update(fields)
        self.docs.append(out)
        return out


MAPPED = {"Bolus", "BolusWizard", "BolusWizard512", "TempBasal", "TempBasalDuration",
          "PumpSuspend", "PumpResume", "Prime", "Rewind", "BGReceived", "BGReceived512",
          "CalBGForPH", "JournalEntryMealMarker"}


def treatments(records, zone, skipped=None):
    """Nightscout treatments from decocare records (newest first, as ``history.merge`` gives
    them), oldest first.  ``skipped``, a list, receives {_type, timestamp, why} for every record
    of a mapped type that gave no treatment (no date, no partner, nothing delivered ...)."""
    dated = []
    for rec in _walk(records):
        if not isinstance(rec, dict) or rec.get("_type") not in MAPPED:
            continue
        if not rec.get("timestamp"):
            _Builder(zone, skipped).skip(rec, "no valid date: no treatment")
            continue
        dated.append(rec)
    # oldest first; equal times keep page order (history.newest_first lists them reversed)
    chron = list(reversed(dated))
    chron.sort(key=lambda r: r["timestamp"])
    b = _Builder(zone, skipped)
    _boluses(b, chron)
    _temps(b, chron)
    _bg_checks(b, chron)
    for rec in chron:
        kind = rec["_type"]
        if kind == "Rewind":
            b.doc("insulin-change", rec, rec["timestamp"])
        elif kind == "Prime":
            if rec.get("type") == "fixed":
                b.doc("site-change", rec, rec["timestamp"],
                      notes="cannula fill: %s U primed" % rec.get("amount"))
            else:
                b.skip(rec, "manual (tubing) prime: no treatment")
        elif kind == "JournalEntryMealMarker":
            if rec.get("units", "grams") == "grams" and rec.get("carb_input"):
                b.doc("carbs", rec, rec["timestamp"], carbs=rec["carb_input"])
            else:
                b.skip(rec, "meal marker not in grams: %s %s not converted" % (
                    rec.get("carb_input"), rec.get("units")))
    docs = _unique(b)
    docs.sort(key=lambda d: (aware(d["created_at"], zone), d["eventType"]))
    return docs


def _boluses(b, chron):
    # a wizard claims the first bolus 0-60 s after it (or of its second), unless another wizard
    # comes after it and no later than that bolus (the pump can log a wizard twice)
    wizards = [r for r in chron if r["_type"] in ("BolusWizard", "BolusWizard512")]
    boluses = [r for r in chron if r["_type"] == "Bolus" and _delivers(r)]
    claimed = {}
    for n, rec in enumerate(wizards):
        t_w = _dt(rec)
        later = [_dt(w) for w in wizards[n + 1:] if _dt(w) > t_w]
        found = None
        for bolus in boluses:
            t_b = _dt(bolus)
            if t_b < t_w or id(bolus) in claimed:
                continue
            if t_b - t_w > WIZARD_WINDOW or (later and later[0] <= t_b):
                break
            found = bolus
            break
        if found is not None:
            claimed[id(found)] = rec
        elif rec.get("carb_input"):
            b.skip(rec, "wizard carbs without a bolus: %s g not uploaded (as oref0)"
                   % rec["carb_input"])
    groups = []          # [[bolus records of one second]]
    for rec in chron:
        if rec["_type"] != "Bolus":
            continue
        if not _delivers(rec):
            b.skip(rec, "nothing programmed, nothing delivered (0/0 U): no treatment")
            continue
        if groups and groups[-1][0]["timestamp"] == rec["timestamp"]:
            groups[-1].append(rec)
        else:
            groups.append([rec])
    made = []
    for group in groups:
        wizard = next((claimed[id(r)] for r in group if id(r) in claimed), None)
        carbs = wizard.get("carb_input") if wizard else 0
        key = "meal-bolus" if carbs else "correction-bolus"
        insulin = _units(sum(r.get("amount", 0) for r in group))
        programmed = _units(sum(r.get("programmed", 0) for r in group))
        squares = [r for r in group if r.get("duration")]
        fields = {"insulin": insulin, "programmed": programmed}
        if carbs:
            fields["carbs"] = carbs
        if len(group) > 1:
            fields["bolusType"] = "dual" if squares and len(squares) < len(group) else (
                "square" if squares else "normal")
            fields["parts"] = [{"type": r.get("type"), "insulin": r.get("amount"),
                                "programmed": r.get("programmed"), "duration": r.get("duration", 0)}
                               for r in group]
        else:
            fields["bolusType"] = "square" if squares else "normal"
        if squares:
            fields["duration"] = max(r["duration"] for r in squares)
        notes = []
        if insulin < programmed:
            notes.append("%s of %s U programmed delivered" % (insulin, programmed))
        if wizard:
            fields["wizard"] = {k: wizard[k] for k in ("bolus_estimate", "food_estimate",
                                                       "correction_estimate", "bg", "units")
                                if k in wizard}
        doc = b.doc(key, group[0], group[0]["timestamp"], **fields)
        if len(group) > 1:
            doc["sources"] = ["Bolus"] * len(group)
        if notes:
            doc["notes"] = "; ".join(notes)
        made.append((group, doc))
    # a dual wave written at two times: normal part, then the square part when it has gone in
    for (g1, d1), (g2, d2) in zip(made, made[1:]):
        if d1["bolusType"] != "normal" or d2["bolusType"] != "square":
            continue
        gap = _dt(g2[0]) - _dt(g1[0])
        if datetime.timedelta(0) < gap <= datetime.timedelta(minutes=1 + d1["programmed"]):
            d1["bolusType"], d2["bolusType"] = "dual-normal", "dual-square"
            d2["eventType"] = d1["eventType"]
            note = "dual wave: normal part %s U at %s, square part %s U over %s min from %s" % (
                d1["insulin"], g1[0]["timestamp"][11:19], d2["insulin"], d2["duration"],
                g2[0]["timestamp"][11:19])
            for d in (d1, d2):
                d["notes"] = note + ("; " + d["notes"] if d.get("notes") else "")


def _delivers(rec):
    return bool(rec.get("amount") or rec.get("programmed"))


def _units(value):
    return round(value, 3)


def _dt(rec):
    return datetime.datetime.fromisoformat(rec["timestamp"])


def _rate_fields(rec):
    if rec.get("temp") == "percent":
        return {"percent": rec["rate"] - 100}
    return {"absolute": rec["rate"], "rate": rec["rate"]}


def _temps(b, chron):
    durations = {}
    for rec in chron:
        if rec["_type"] == "TempBasalDuration":
            durations.setdefault(rec["timestamp"], []).append(rec)
    temps = []          # (start, end, rec) of the temps that ran
    for rec in chron:
        if rec["_type"] != "TempBasal":
            continue
        pair = durations.get(rec["timestamp"])
        if not pair:
            b.skip(rec, "TempBasal without its TempBasalDuration (same timestamp): duration "
                        "unknown, not converted")
            continue
        minutes = pair.pop(0).get("duration (min)")
        if not minutes:
            b.doc("temp-basal-cancel", rec, rec["timestamp"], duration=0,
                  notes="temp basal cancelled")
            temps.append((_dt(rec), _dt(rec), rec))
            continue
        b.doc("temp-basal", rec, rec["timestamp"], duration=minutes, temp=rec.get("temp"),
              **_rate_fields(rec))
        temps.append((_dt(rec), _dt(rec) + datetime.timedelta(minutes=minutes), rec))
    for left in durations.values():
        for rec in left:
            b.skip(rec, "TempBasalDuration without its TempBasal (same timestamp): not converted")
    newest = _dt(chron[-1]) if chron else None
    for i, rec in enumerate(chron):
        if rec["_type"] != "PumpSuspend":
            continue
        resume = None
        for later in chron[i + 1:]:
            if later["_type"] == "PumpSuspend":
                break
            if later["_type"] == "PumpResume":
                resume = later
                break
        start = _dt(rec)
        if resume is not None:
            b.doc("suspend", rec, rec["timestamp"], absolute=0, rate=0,
                  duration=_minutes(_dt(resume) - start), notes="pump suspended")
        else:
            covered = _minutes(newest - start)
            b.doc("suspend", rec, rec["timestamp"], absolute=0, rate=0, duration=max(covered, 1),
                  notes="pump suspended; no PumpResume in this history, which covers %s min "
                        "after the suspend%s" % (covered, "" if covered >= 1 else
                                                 " (1 min shown: 0 would be a cancel)"))
    for rec in chron:
        if rec["_type"] != "PumpResume":
            continue
        at = _dt(rec)
        suspended = [r for r in chron if r["_type"] == "PumpSuspend" and _dt(r) <= at]
        since = _dt(suspended[-1]) if suspended else None
        running = None
        for start, end, temp in temps:
            if start <= at:
                running = (start, end, temp)       # the newest temp that started before
        if (since is not None and running is not None and running[0] <= since
                and running[1] > at and running[1] > running[0]):
            left = _minutes(running[1] - at)
            b.doc("resume", rec, rec["timestamp"], duration=left, temp=running[2].get("temp"),
                  notes="pump resumed; the temp basal of %s continues for the %s min it has left"
                        % (running[2]["timestamp"][11:19], left), **_rate_fields(running[2]))
        else:
            b.doc("resume", rec, rec["timestamp"], duration=0, notes="pump resumed")


def _bg_checks(b, chron):
    readings = []       # (time, mg/dl, rec)
    for rec in chron:
        kind = rec["_type"]
        if kind in ("BGReceived", "BGReceived512", "CalBGForPH"):
            value = rec.get("amount")
        elif kind in ("BolusWizard", "BolusWizard512"):
            value = rec.get("bg")
            if value and rec.get("units") == "mmol":
                value = int(round(value * MGDL_PER_MMOL))
        else:
            continue
        if not value:
            continue
        readings.append((_dt(rec), value, rec))
    kept = []           # [time, value, doc]
    for when, value, rec in readings:
        same = next((k for k in reversed(kept) if k[1] == value
                     and datetime.timedelta(0) <= when - k[0] <= BG_SAME_READING), None)
        if same is not None:
            same[2]["sources"].append(rec["_type"])
            continue
        fields = {"glucose": value, "glucoseType": "Finger", "units": "mg/dl",
                  "sources": [rec["_type"]]}
        if rec["_type"].startswith("BolusWizard") and rec.get("units") == "mmol":
            fields["notes"] = "entered as %s mmol/L" % rec.get("bg")
        kept.append([when, value, b.doc("bg-check", rec, rec["timestamp"], **fields)])


def _unique(b):
    """One treatment per created_at + eventType (Nightscout overwrites the second)."""
    seen, out = {}, []
    for doc in b.docs:
        key = dedupe_key("treatments", doc)
        if key in seen:
            b.skip(doc, "same time and eventType as another treatment: %s %s (Nightscout keeps "
                        "one), not converted" % (doc["created_at"], doc["eventType"]))
            continue
        seen[key] = doc
        out.append(doc)
    return out


# ---------------------------------------------------------------------------------------------
# entries


def sgv_entry(rec, zone, device=DEVICE):
    """The core of one dated sensor value as Nightscout (and oref0) read it: type "sgv", sgv,
    date (epoch ms), dateString (zoned ISO), device."""
    when = aware(rec["date"], zone)
    return {"type": "sgv", "sgv": rec["sgv"], "date": epoch_ms(when),
            "dateString": when.isoformat(), "device": device}


def entries(glucose_records, zone):
    """Nightscout sgv entries, oldest first, from decoded glucose-page records: only dated
    GlucoseSensorData values (SensorDataLow/High are out-of-range markers, 40/400 would pass for
    readings; values after the newest SensorTimestamp have no date yet)."""
    out, seen = [], set()
    for rec in glucose_records:
        if rec.get("name") != "GlucoseSensorData" or not rec.get("date"):
            continue
        entry = sgv_entry(rec, zone)
        key = dedupe_key("entries", entry)
        if key in seen:
            continue
        seen.add(key)
        out.append(entry)
    out.sort(key=lambda e: e["date"])
    return out


# ---------------------------------------------------------------------------------------------
# upload

COLLECTIONS = {"treatments": "created_at", "entries": "date"}
COMPARED = ("insulin", "carbs", "duration", "absolute", "percent", "glucose", "sgv")


def dedupe_key(collection, doc):
    """What makes two documents the same one: treatments the instant of created_at (to the
    millisecond, whatever its offset or format) and eventType; entries date (ms) and type."""
    if collection == "treatments":
        text = doc.get("created_at")
        if not isinstance(text, str):
            return None
        try:
            when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return (epoch_ms(when), doc.get("eventType"))
    date = doc.get("date")
    if not isinstance(date, (int, float)):
        return None
    return (int(date), doc.get("type"))


def public_url(url):
    """``url`` without user/password, query or fragment (what may be shown)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += ":%d" % parts.port
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def site_base(url):
    """The site's base URL (no /api/v1, user, query); BadInput when it is not http(s)."""
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput("--upload %r: not a Nightscout site URL (use https://your.site)"
                       % public_url(url or ""))
    base = public_url(url)
    if base.endswith("/api/v1"):
        base = base[:-len("/api/v1")]
    return base


def _iso_utc(ms):
    """Nightscout's stored created_at form: UTC with milliseconds and Z."""
    when = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (when.microsecond // 1000)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would turn a POST into a GET (nothing stored, yet an
    answer) and send the API-SECRET header on to wherever the redirect points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class _Site:
    def __init__(self, base, secret, collection):
        self.base, self.collection = base, collection
        self.headers = {"API-SECRET": hashlib.sha1(secret.encode("utf-8")).hexdigest(),
                        "Accept": "application/json"}

    def request(self, method, path, query=None, body=None, sent=0, total=0):
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers = dict(self.headers)
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        tail = "; %d of %d documents were sent before the failure" % (sent, total)
        if method == "POST":
            tail += (" (the batch in flight may or may not have been stored: run the upload "
                     "again, what the site holds is not sent twice)")
        where = "%s %s%s" % (method, public_url(self.base), path)
        try:
            with _OPENER.open(req, timeout=TIMEOUT) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                raise UploadError("%s: HTTP %d: the site redirects to %s; give that address to "
                                  "--upload%s" % (where, exc.code, public_url(exc.headers.get(
                                      "Location") or "?"), tail))
            if exc.code in (401, 403):
                raise UploadError("%s: %d %s: the site refused the API secret ($API_SECRET)%s"
                                  % (where, exc.code, exc.reason, tail))
            raise UploadError("%s: HTTP %d %s%s" % (where, exc.code, exc.reason, tail))
        except urllib.error.URLError as exc:
            raise UploadError("%s: site unreachable (%s)%s" % (where, exc.reason, tail))
        except (OSError, ValueError) as exc:     # connection reset, timeout, bad status line
            raise UploadError("%s: the connection failed (%s)%s"
                              % (where, exc.__class__.__name__ + (": %s" % exc if str(exc) else ""),
                                 tail))
        try:
            return json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError):
            raise UploadError("%s: the answer is not JSON (is %s a Nightscout site?)%s"
                              % (where, public_url(self.base), tail))

    def existing(self, low, high, total):
        """Every document the site holds with its time in [low, high] (ms), asked for in pages
        of PAGE, newest first, walking down until a page is not full."""
        field = COLLECTIONS[self.collection]
        path = "/api/v1/%s.json" % self.collection
        found, top, count = [], high, PAGE
        while True:
            if field == "created_at":
                query = {"find[created_at][$gte]": _iso_utc(low),
                         "find[created_at][$lte]": _iso_utc(top), "count": count}
            else:
                query = {"find[date][$gte]": low, "find[date][$lte]": top, "count": count}
            page = self.request("GET", path, query, total=total)
            if not isinstance(page, list):
                raise UploadError("GET %s%s: the answer is not a list of documents (is it a "
                                  "Nightscout site?); 0 of %d documents were sent before the "
                                  "failure" % (public_url(self.base), path, total))
            found.extend(d for d in page if isinstance(d, dict))
            if len(page) < count:
                return found
            times = [k[0] for k in (dedupe_key(self.collection, d) for d in page) if k]
            oldest = min(times) if times else low
            top = oldest if oldest < top else top - 1        # never ask the same page again
            if top < low:
                return found


def upload(url, secret, collection, docs, dry_run=False, log=None):
    """Send ``docs`` (Nightscout ``collection`` "treatments" or "entries") to the site at
    ``url`` -- only those the site does not hold yet (``dedupe_key``) -- in batches of BATCH.
    A treatment of ours already there with other values (a suspend since resumed, a square bolus
    since finished) is sent again, which replaces it (``updated``); one entered by another
    program is left and listed under ``differs``.
    Returns {collection, url, sent, already_there, updated, duplicates, differs, dry_run}.  Errors are
    UploadError (the site) or BadInput (the arguments); the secret is never shown."""
    if collection not in COLLECTIONS:
        raise BadInput("collection %r: Nightscout uploads go to treatments or entries" % collection)
    if not secret:
        raise BadInput("no API secret: nothing was sent")
    say = log or (lambda line: None)
    base = site_base(url)
    site = _Site(base, secret, collection)
    summary = {"collection": collection, "url": public_url(base), "sent": 0, "already_there": 0,
               "duplicates": 0, "differs": [], "dry_run": bool(dry_run)}
    mine, keys = [], set()
    for doc in docs:
        key = dedupe_key(collection, doc)
        if key is None:
            raise BadInput("a %s document without a valid %s: %r" % (
                collection, COLLECTIONS[collection], {k: doc.get(k) for k in list(doc)[:4]}))
        if key in keys:
            summary["duplicates"] += 1
            continue
        keys.add(key)
        mine.append((key, doc))
    if not mine:
        say("nightscout: no %s to send" % collection)
        return summary
    low, high = min(k[0] for k, _ in mine), max(k[0] for k, _ in mine)
    there = {}
    for doc in site.existing(low - 1000, high + 1000, len(mine)):
        key = dedupe_key(collection, doc)
        if key is not None:
            there.setdefault(key, doc)
    todo, updates = [], 0
    for key, doc in mine:
        old = there.get(key)
        if old is None:
            todo.append(doc)
            continue
        summary["already_there"] += 1
        if any(k in doc and old.get(k) != doc[k] for k in COMPARED):
            if collection == "treatments" and old.get("enteredBy") == ENTERED_BY:
                # our own earlier upload, since completed (a suspend resumed, a square bolus
                # done): Nightscout's POST replaces the treatment of the same created_at +
                # eventType, so sending it again updates it -- it never adds a second one
                todo.append(doc)
                updates += 1
                continue
            summary["differs"].append({"time": doc.get("created_at") or doc.get("dateString"),
                                       "type": doc.get("eventType") or doc.get("type"),
                                       "site": {k: old.get(k) for k in COMPARED if k in doc},
                                       "ours": {k: doc[k] for k in COMPARED if k in doc}})
    summary["updated"] = updates
    say("nightscout: %s at %s: %d documents, %d already there, %d to send (%d of them updates of "
        "our own earlier upload)%s" % (
            collection, public_url(base), len(mine), summary["already_there"], len(todo), updates,
            " (dry run: nothing sent)" if dry_run else ""))
    if summary["differs"]:
        say("nightscout: %d documents already on the site, entered by another program, differ "
            "from ours (kept as they are; check them)" % len(summary["differs"]))
    if dry_run:
        summary["would_send"] = len(todo)
        return summary
    path = "/api/v1/%s.json" % collection
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        site.request("POST", path, body=batch, sent=summary["sent"], total=len(todo))
        summary["sent"] += len(batch)
    say("nightscout: sent %d %s" % (summary["sent"], collection))
    return summary

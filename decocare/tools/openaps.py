"""mm-openaps.py: every file an OpenAPS rig needs, read from the pump in one session and written
into --out DIR in the shapes openaps' medtronic vendor wrote with decocare 0.0.31 (no jq needed).

  mm-openaps.py --serial 208850 --out monitor/
  mm-openaps.py --serial 208850 --out monitor/ --only status,history --hours 6
  mm-openaps.py --serial 208850 --out monitor/ --only history --since-id AbCdEf...==

groups (--only, default all four; glucose only on CGM pumps, 522/722 and later):
  status   clock.json (naive ISO), clock-zoned.json (ISO with the zone offset), model.json,
           status.json {status, bolusing, suspended}, reservoir.json (units), battery.json
           {status, voltage}, temp_basal.json {temp, rate, duration}
  profile  settings.json, bg_targets.json, insulin_sensitivities.json, carb_ratios.json
           (schedules with offset in minutes), basal_profile.json (the selected pattern)
  history  pumphistory.json and pumphistory-zoned.json: the last --hours of pump history,
           newest first in one time-ordered list, every record with its "id"; --since-id ID
           stops at that record as well (reads one page when nothing is new)
  glucose  glucose.json: the sensor values of the last --hours, newest first, with glucose/sgv,
           date (epoch ms), dateString and display_time (zoned), type "sgv"

Zoned times carry the offset of the host's zone, or of --timezone NAME (the pump's zone).
Every file is written atomically (a temporary file, then renamed), after the session.  A file
that could not be read is not written and an OLD FILE OF THAT NAME IS REMOVED, so a stale file
never passes for fresh; stderr names it and the exit code is the failed read's (5 no answer,
6 refused, 3 a history/glucose page decoded only in part ...; the first failure's when several
fail).  Files the model does not have (status.json on a 508-512, glucose.json before the 522)
are not written and an existing one is left alone.  See docs/openaps.md.
"""
import argparse
import datetime
import json
import os
import sys

from .. import errors
from ..models import get_model
from . import latest, options

PROG = "mm-openaps.py"
GROUPS = {
    "status": ("clock.json", "clock-zoned.json", "model.json", "status.json", "reservoir.json",
               "battery.json", "temp_basal.json"),
    "profile": ("settings.json", "bg_targets.json", "insulin_sensitivities.json", "carb_ratios.json",
                "basal_profile.json"),
    "history": ("pumphistory.json", "pumphistory-zoned.json"),
    "glucose": ("glucose.json",),
}
ORDER = ("status", "history", "glucose", "profile")     # the order they are read
# the keys openapscontrib.timezones' rezone gives a zone (oref0 reads the *-zoned.json files)
ZONED_KEYS = ("timestamp", "dateString", "start_at", "end_at", "created_at")
PROFILES = ("ReadProfile_STD512", "ReadProfile_A512", "ReadProfile_B512")
MAX_HOURS = 100 * 366 * 24
GLUCOSE_DEVICE = "openaps://medtronic/pump/cgm"      # what oref0's mm-format-*-glucose set
# the session is over after these: every later read would fail the same way
LINK_ERRORS = (errors.CommError, errors.PortError)


def zoned(text, zone):
    """A naive pump-local ISO time with the zone's offset ("2024-03-01T14:05:00+01:00"); a time
    that already has an offset is kept (openapscontrib.timezones' ``adjust missing``)."""
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.isoformat()


def rezone(value, zone):
    """A copy of ``value`` with ZONED_KEYS zoned at every depth (records nested in ``appended``)."""
    if isinstance(value, list):
        return [rezone(v, zone) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ZONED_KEYS and isinstance(item, str):
                try:
                    item = zoned(item, zone)
                except ValueError:
                    pass                    # not a time: left as it is
            else:
                item = rezone(item, zone)
            out[key] = item
        return out
    return value


def glucose_entry(rec, zone):
    """One dated sensor value as oref0 reads glucose (lib/glucose-get-last.js, determine-basal's
    cob/autosens): decocare's cgm keys, with ``date`` in epoch ms, ``dateString`` and
    ``display_time`` zoned, ``glucose`` = ``sgv``, ``type`` "sgv"."""
    from ..exports.nightscout import sgv_entry
    out = dict(rec)
    out.update(sgv_entry(rec, zone, device=GLUCOSE_DEVICE))
    out.update(display_time=out["dateString"], glucose=rec["sgv"])
    return out


def read_glucose(pump, cutoff):
    """(sensor values newer than ``cutoff``, newest first, [(page, problem)], undated count,
    pages read): glucose pages from the newest down until one holds a value older than the
    cutoff.  Only GlucoseSensorData values with a date are kept: SensorDataLow/High are out-of-
    range markers (40/400 would pass for real readings) and values written after the newest
    SensorTimestamp have no date yet."""
    from .. import cgm
    cursor = pump.read("ReadCurGlucosePageNumber")
    values, problems, undated, read = [], [], 0, 0
    newest = cursor["page"]
    for number in range(newest, max(newest - cursor["glucose"], -1), -1):
        result = cgm.decode_page(pump.glucose_page(number), pump.model, lenient=True)
        read += 1
        if not result.complete:
            problems.append((number, result.problem()))
        older = False
        for rec in result.records:
            if rec.get("name") != cgm.GLUCOSE:
                continue
            if "date" not in rec:
                undated += 1
                continue
            if datetime.datetime.fromisoformat(rec["date"]) < cutoff:
                older = True
                continue
            values.append(rec)
        if older:
            break
    values.sort(key=lambda r: r["date"], reverse=True)
    return values, problems, undated, read


class Run:
    """One run: what was read (file -> value), what failed (file -> (exit code, why)), notes."""

    def __init__(self, planned):
        self.planned = list(planned)
        self.values, self.failed, self.notes = {}, {}, []
        self.code = 0            # an exit code that is no failed file's (--only glucose, no CGM)

    def fail(self, names, code, why):
        for name in names:
            if name in self.planned and name not in self.values and name not in self.failed:
                self.failed[name] = (code, why)

    def skip(self, name, why):
        """A file this model does not have: not written, an existing one left alone."""
        if name in self.planned:
            self.planned.remove(name)
            self.notes.append("%s not written: %s (an existing %s is left alone)" % (name, why, name))

    def attempt(self, names, read):
        """Set the files ``names`` from ``read()`` (their one value, or a tuple of one per name);
        returns it, or None when none of them is planned or the read failed.  A pump refusal
        fails these files only; a link failure (no answer, port gone) is raised: the session
        is over."""
        if not any(n in self.planned for n in names):
            return None
        try:
            got = read()
        except LINK_ERRORS:
            raise
        except errors.DecocareError as exc:
            self.fail(names, exc.exit_code, str(exc))
            return None
        for name, value in zip(names, got if len(names) > 1 else (got,)):
            if name in self.planned:
                self.values[name] = value
        return got


def _hours(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("hours must be a number, got %r" % text)
    if not 0 < value <= MAX_HOURS:
        raise argparse.ArgumentTypeError("hours must be more than 0 and at most %d, got %s" % (MAX_HOURS, text))
    return value


def _groups(text):
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError("--only takes a comma-separated list of %s, got %r"
                                         % (",".join(sorted(GROUPS)), text))
    return set(names)


def plan(groups, model=None, explicit_glucose=False):
    """The files of ``groups`` in the order they are read; glucose.json only when the model is
    known to keep glucose (or --only names glucose)."""
    out = []
    for group in ORDER:
        if group in groups and (group != "glucose" or explicit_glucose or
                                (model is not None and model.has_cgm)):
            out += GROUPS[group]
    return out


def read_all(pump, run, args, zone, report):
    """Every read of the planned files, in one session, in ORDER."""
    from ..commands import supported
    model = pump.model
    if "glucose" in args.groups and model.has_cgm and "glucose.json" not in run.planned:
        run.planned.append("glucose.json")
    if not supported("ReadPumpStatus", model):
        run.skip("status.json", "the %s has no ReadPumpStatus" % model)
    if "glucose.json" in run.planned and not model.has_cgm:
        run.skip("glucose.json", "the %s keeps no glucose history" % model)
        run.code = errors.EXIT_REFUSED           # --only asked for glucose by name
    clock = None
    timed = [n for n in ("clock.json", "clock-zoned.json", "pumphistory.json",
                         "pumphistory-zoned.json", "glucose.json") if n in run.planned]
    if timed:
        try:
            clock = pump.read("ReadRTC")
        except LINK_ERRORS:
            raise
        except errors.DecocareError as exc:
            run.fail(timed, exc.exit_code, "ReadRTC (the pump clock): %s" % exc)
        else:
            run.attempt(("clock.json", "clock-zoned.json"), lambda: (clock, zoned(clock, zone)))
    run.attempt(("model.json",), lambda: str(model))
    run.attempt(("status.json",), lambda: {k: v for k, v in pump.read("ReadPumpStatus").items()
                                          if k in ("status", "bolusing", "suspended")})
    run.attempt(("reservoir.json",), lambda: pump.read("ReadRemainingInsulin"))
    run.attempt(("battery.json",), lambda: pump.read("ReadBatteryStatus"))
    run.attempt(("temp_basal.json",), lambda: pump.read("ReadBasalTemp"))
    if clock is not None:
        cutoff = datetime.datetime.fromisoformat(clock) - datetime.timedelta(hours=args.hours)
        run.attempt(("pumphistory.json", "pumphistory-zoned.json"),
                    lambda: _history(pump, cutoff, args.since_id, zone, report))
        run.attempt(("glucose.json",), lambda: _glucose(pump, cutoff, zone, report))
    settings = run.attempt(("settings.json",), lambda: pump.read("ReadSettings"))
    run.attempt(("bg_targets.json",), lambda: pump.read("ReadBGTargets"))
    run.attempt(("insulin_sensitivities.json",), lambda: pump.read("ReadInsulinSensitivities"))
    run.attempt(("carb_ratios.json",), lambda: pump.read("ReadCarbRatios"))
    if settings is None:
        code = run.failed.get("settings.json", (errors.EXIT_ERROR,))[0]
        run.fail(("basal_profile.json",), code, "which basal pattern is selected is in "
                 "ReadSettings (settings.json), which could not be read")
    else:
        run.attempt(("basal_profile.json",), lambda: _basal_profile(pump, settings, report))


def _history(pump, cutoff, since_id, zone, report):
    records, pages, stopped, problems = latest.recent(pump, cutoff, since_id)
    report["history"] = "%d records, %d page%s read, stopped at %s" % (
        len(records), pages, "s" * (pages != 1), stopped)
    if problems:
        raise errors.PartialPage("page %s decoded only in part (%s): records past the problem are "
                                 "missing" % (", ".join(str(n) for n, _ in problems),
                                              "; ".join(why for _, why in problems)))
    return records, rezone(records, zone)


def _glucose(pump, cutoff, zone, report):
    values, problems, undated, pages = read_glucose(pump, cutoff)
    report["glucose"] = "%d values, %d page%s read" % (len(values), pages, "s" * (pages != 1))
    if undated:
        report["glucose"] += ", %d newer value%s without a date yet left out" % (undated, "s" * (undated != 1))
    if problems:
        raise errors.PartialPage("glucose page %s decoded only in part (%s): values past the "
                                 "problem are missing" % (", ".join(str(n) for n, _ in problems),
                                                          "; ".join(why for _, why in problems)))
    return [glucose_entry(rec, zone) for rec in values]


def _basal_profile(pump, settings, report):
    pattern = settings.get("selected_pattern") if isinstance(settings, dict) else None
    if pattern not in (0, 1, 2):
        raise errors.Refused("the selected basal pattern is not known (ReadSettings gave %r)"
                             % (pattern if isinstance(settings, dict) else settings,))
    profile = pump.read(PROFILES[pattern])
    if not profile:
        report["basal_profile"] = "the selected basal profile %s is empty" % ("STD", "A", "B")[pattern]
    return profile


def write_atomic(directory, name, value):
    """``value`` as JSON in ``directory/name``: a temporary file, fsync, then rename over."""
    path = os.path.join(directory, name)
    tmp = os.path.join(directory, ".%s.%d.tmp" % (name, os.getpid()))
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_stale(directory, name):
    """Remove an old ``name``: None when there was none, True when removed, else why not."""
    try:
        os.unlink(os.path.join(directory, name))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    return True


def main(argv=None):
    p = options.parser(PROG, __doc__)
    p.add_argument("--out", required=True, metavar="DIR", help="where the files are written (created if needed)")
    p.add_argument("--only", type=_groups, metavar="GROUPS",
                   help="comma-separated groups to read: status,profile,history,glucose (default: all)")
    p.add_argument("--hours", type=_hours, default=24.0, metavar="H",
                   help="history and glucose of the last H hours of the pump clock (default 24)")
    p.add_argument("--since-id", metavar="ID",
                   help="history: stop at this record (an \"id\" of an earlier pumphistory.json); "
                        "pumphistory then holds only what is newer")
    p.add_argument("--timezone", metavar="NAME",
                   help="the pump's time zone for the zoned files, e.g. Europe/Paris (default: the host's)")
    args = options.parse(p, argv)
    args.groups = args.only or set(ORDER)
    zone = options.zone(args.timezone)
    out = options.writable_dir(args.out)          # before the pump is touched
    claimed = get_model(args.model) if args.model else None
    run = Run(plan(args.groups, claimed, explicit_glucose=bool(args.only and "glucose" in args.only)))
    report = {}
    try:
        with options.open_args(args) as pump:
            try:
                read_all(pump, run, args, zone, report)
            except LINK_ERRORS as exc:
                run.fail(run.planned, exc.exit_code, "the session broke off: %s" % exc)
    except errors.DecocareError as exc:       # opening the port or waking the pump failed
        run.fail(run.planned, exc.exit_code, str(exc))
    return finish(run, out, report)


def finish(run, out, report):
    """Write what was read, remove the old files of what failed, say so (one line per reason);
    the exit code: the first failure's."""
    written = []
    for name in run.planned:
        if name in run.values:
            try:
                write_atomic(out, name, run.values[name])
                written.append(name)
            except OSError as exc:
                run.failed[name] = (errors.EXIT_ERROR, "cannot write it (%s)" % (exc.strerror or exc))
        elif name not in run.failed:
            run.failed[name] = (errors.EXIT_ERROR, "not read")
    for note in run.notes:
        print("%s: %s" % (PROG, note), file=sys.stderr)
    code = run.code
    reasons = {}
    for name in run.planned:
        if name in run.failed:
            reasons.setdefault(run.failed[name], []).append(name)
    for (failure, why), names in reasons.items():
        code = code or failure
        removed = {name: remove_stale(out, name) for name in names}
        gone = [n for n, r in removed.items() if r is True]
        stuck = ["%s (%s)" % (n, r) for n, r in removed.items() if r not in (None, True)]
        tail = "; the old %s removed" % ("file was" if len(gone) == 1 else "files were") if gone else ""
        if len(gone) not in (0, len(names)):
            tail += ": " + ", ".join(gone)
        if stuck:
            tail += "; STALE, could not be removed: " + ", ".join(stuck)
        print("%s: not written: %s: %s%s" % (PROG, ", ".join(names), why, tail), file=sys.stderr)
    details = "; ".join("%s: %s" % item for item in sorted(report.items()))
    print("%s: %d file%s written to %s%s" % (PROG, len(written), "s" * (len(written) != 1), out,
                                             " (%s)" % details if details else ""), file=sys.stderr)
    return code

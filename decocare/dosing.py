"""Pump writes (temp basal, bolus, suspend/resume, clock, keys, basal profile): check, send once,
verify, and say honestly what happened.

Why a module of its own: a write through a CareLink stick can be executed although its answer is
lost, and decocare 0.0.31 re-sent boluses and suspends (spec protocol.md §7).  Here every write
goes through one flow:

1. check before sending (model supports it, value on the model's increments and within the
   pump's own limits read from ReadSettings, no bolus while bolusing or suspended); a failed
   check is ``refused`` and nothing is sent;
2. send it exactly once (``Session.execute`` on the write row: one TransmitPacket, no retry);
3. read back (ReadBasalTemp, ReadPumpStatus, history page 0, ReadRTC, ReadSettings) and report
   ``delivered`` (verified), ``refused`` (the pump's NAK code, or our check) or ``uncertain``
   (sent, outcome unknown: what the read-back showed and why it proves nothing).

Nothing here ever re-sends a write.  ``docs/dosing.md`` is the user-facing description.
"""
import argparse
import datetime
import json
import logging
import sys
import time

from . import cli, commands, errors, frames, history
from .models import get_model
from .tools.pumpcli import open_pump

log = logging.getLogger(__name__)

DELIVERED, REFUSED, UNCERTAIN, DRY_RUN = "delivered", "refused", "uncertain", "dry-run"
EXIT_CODES = {DELIVERED: errors.EXIT_OK, REFUSED: errors.EXIT_REFUSED,
              UNCERTAIN: errors.EXIT_UNCERTAIN, DRY_RUN: errors.EXIT_OK}

# What the pump means by a NAK code (spec protocol.md §4.1, §5.2).
NAK_MEANINGS = {
    0x08: "command refused: not supported by this pump or not allowed in its current state "
          "(e.g. an absolute temp basal on a pump set to percent temps)",
    0x09: "value out of range: over the pump's maximum setting",
    0x0C: "a bolus is in progress",
    0x0D: "no such history page",
}

CLOCK_TOLERANCE = 5           # seconds between the set time and the read-back
KEYS = tuple(key.lower() for key in commands.KEYS)
PROFILES = {"STD": 0, "A": 1, "B": 2}
PROFILES_BY_CODE = {code: name for name, code in PROFILES.items()}
UNCERTAIN_BOLUS_ADVICE = ("CHECK THE PUMP (its bolus history and whether it is delivering) "
                          "before doing anything else; do NOT repeat this bolus")


class Result:
    """The outcome of one write: what was asked, what was sent, what the pump said, what the
    read-back showed.  ``as_json()`` is the tools' ``--json`` object."""

    def __init__(self, command, requested):
        self.command = command
        self.requested = dict(requested)
        self.outcome = None
        self.sent = False
        self.received = False          # the pump ACKed
        self.reason = None
        self.code = None
        self.verification = None
        self.notes = []
        self.legacy = {}               # decocare 0.0.31's keys, kept for old consumers
        self.link_failure = None       # exit code when nothing was sent because the link failed

    @property
    def exit_code(self):
        return self.link_failure or EXIT_CODES[self.outcome]

    def finish(self, outcome, reason=None, code=None):
        self.outcome, self.reason = outcome, reason
        if code is not None:
            self.code = code
        return self

    def as_json(self):
        out = {"outcome": self.outcome, "command": self.command, "sent": self.sent,
               "received": self.received, "recieved": self.received,
               "requested": self.requested}
        if self.reason:
            out["reason"] = self.reason
        if self.code is not None:
            out["code"] = self.code
            out["code_meaning"] = NAK_MEANINGS.get(self.code, "unknown NAK code")
        if self.verification is not None:
            out["verification"] = self.verification
        if self.notes:
            out["notes"] = list(self.notes)
        out.update(self.legacy)
        return out

    def text(self):
        lines = ["%s: %s %s" % (self.outcome, self.command, _describe(self.requested))]
        if self.outcome == DRY_RUN:
            lines.append("would send TransmitPacket %s (nothing sent)" % self.requested["packet"])
        elif self.sent:
            lines.append("sent once; pump %s" % ("ACKed" if self.received else
                                                 "NAKed" if self.code is not None else
                                                 "answer unknown"))
        if self.reason:
            lines.append("reason: " + self.reason)
        if self.code is not None:
            lines.append("pump code 0x%02x: %s" % (self.code, NAK_MEANINGS.get(self.code, "unknown")))
        if self.verification is not None:
            lines.append("read back: " + json.dumps(self.verification, default=str))
        lines.extend("note: " + note for note in self.notes)
        return "\n".join(lines)


def _describe(requested):
    return ", ".join("%s=%s" % (k, v) for k, v in requested.items() if k != "packet")


class _Refuse(Exception):
    """A check failed before anything was sent (``link_failure``: the exit code when the
    reason is a port/communication failure rather than a refusal)."""

    def __init__(self, reason, code=None, link_failure=None):
        super().__init__(reason)
        self.reason, self.code, self.link_failure = reason, code, link_failure


def _num(value):
    """Print 2.0 as 2.0 and 1.025 as 1.025 (no float noise in reasons)."""
    return float("%.4f" % value)


class Writer:
    """The write flow for one pump (a ``commands.Pump``).  ``dry_run``: do the checks and show
    the TransmitPacket, send nothing."""

    def __init__(self, pump, dry_run=False, max_basal=None):
        self.pump = pump
        self.dry_run = dry_run
        self.max_basal = max_basal     # given by the caller: ReadSettings is not read for it
        self.sent = False              # a write has left (whatever happens next)
        self._model = None
        self._settings = None

    # --- reads before sending: any failure refuses (nothing has been sent) -------------------

    @property
    def model(self):
        if self._model is None:
            self._model = get_model(str(self._before("ReadPumpModel", lambda: self.pump.model)))
        return self._model

    def _before(self, what, read):
        try:
            return read()
        except errors.Unsupported as exc:
            raise _Refuse("%s: %s" % (what, exc))
        except errors.Refused as exc:
            raise _Refuse("the pump refused %s (%s); nothing sent" % (what, exc), code=exc.code)
        except (errors.CommError, errors.PortError) as exc:
            raise _Refuse("could not read %s before sending (%s); nothing sent" % (what, exc),
                          link_failure=exc.exit_code)
        except errors.DecocareError as exc:
            raise _Refuse("could not read %s before sending (%s); nothing sent" % (what, exc))

    def read(self, name):
        return self._before(name, lambda: self.pump.read(name))

    def settings(self):
        if self._settings is None:
            self._settings = self.read("ReadSettings")
        return self._settings

    def require(self, name):
        if not commands.supported(name, self.model):
            raise _Refuse("the %s does not support %s; nothing sent" % (self.model, name))

    def encode(self, name, **values):
        """The params bytes; the encoder refuses values off the model's increments or ranges."""
        self.require(name)
        try:
            return commands.params(name, self.model, **values)
        except errors.BadInput as exc:
            raise _Refuse("%s; nothing sent" % exc)

    def page0(self, why):
        return self._before("history page 0 (%s)" % why, self.history0)

    def history0(self):
        """Page 0 decoded in full (a partial page could hide the newest records)."""
        return history.decode_page(self.pump.history_page(0), self.model).records

    # --- the one send ---------------------------------------------------------------------

    def send(self, result, name, params):
        """Send ``name`` once.  Returns False when the pump NAKed (result is then final)."""
        row = commands.resolve(name, self.model)
        result.requested["params"] = bytes(params).hex()
        result.requested["packet"] = frames.encode_transmit(
            self.pump.session.serial, row.opcode, params, frames=row.frames,
            retries=row.retries, button=row.button).hex()
        if self.dry_run:
            result.finish(DRY_RUN)
            return False
        result.sent = self.sent = True
        try:
            self.pump.session.execute(row, bytes(params))
            result.received = True
        except errors.Refused as exc:
            result.finish(REFUSED, "the pump refused %s (NAK 0x%02x: %s); nothing delivered"
                          % (name, exc.code or 0, NAK_MEANINGS.get(exc.code, "unknown code")),
                          code=exc.code)
            return False
        except Exception as exc:   # anything after the packet may have left = unknown outcome
            log.debug("write %s ended in %r", name, exc, exc_info=True)
            result.notes.append("after sending, the answer was lost: %s" % (exc,))
        return True

    def after(self, result, what, read):
        """A verification read; None (and a note) when it fails."""
        try:
            return read()
        except Exception as exc:   # a failed read-back must never turn into a traceback
            result.notes.append("could not read %s to verify: %s" % (what, exc))
            return None

    def unverified(self, result, why):
        """Sent, and the read-back does not prove it was executed."""
        prefix = "the pump ACKed, but " if result.received else "the pump's answer was lost and "
        return result.finish(UNCERTAIN, prefix + why)

    def run(self, result, flow):
        """Run ``flow(result)``; a failed pre-check becomes ``refused`` with its reason."""
        try:
            flow(result)
        except _Refuse as exc:
            result.finish(REFUSED, exc.reason, code=exc.code)
            result.link_failure = exc.link_failure
        return result

    # --- temp basal -----------------------------------------------------------------------

    def temp_basal(self, rate=None, percent=None, duration=0):
        """Set an absolute (``rate`` U/h) or ``percent`` temp basal for ``duration`` minutes;
        rate 0 and duration 0 cancel."""
        temp = "percent" if percent is not None else "absolute"
        amount = percent if percent is not None else rate
        result = Result("TempBasalPercent" if temp == "percent" else "TempBasal",
                        {"temp": temp, "rate": amount, "duration": duration})
        return self.run(result, lambda r: self._temp_basal(r, temp, amount, duration))

    def cancel_temp_basal(self):
        """Cancel a running temp basal: a zero temp of zero minutes in the pump's own type."""
        def flow(result):
            temp = self._pump_temp_type() or "absolute"
            if temp == "percent" and not commands.supported("TempBasalPercent", self.model):
                temp = "absolute"
            result.command = "TempBasalPercent" if temp == "percent" else "TempBasal"
            result.requested["temp"] = temp
            self._temp_basal(result, temp, 0, 0)
        return self.run(Result("TempBasal", {"temp": "absolute", "rate": 0, "duration": 0}), flow)

    def _pump_temp_type(self):
        """'absolute'/'percent' from the pump's settings, None when they do not tell."""
        kind = (self.settings().get("temp_basal") or {}).get("type")
        return {"Units/hour": "absolute", "Percent": "percent"}.get(kind)

    def _temp_basal(self, result, temp, amount, duration):
        name = result.command
        values = {"percent": amount} if temp == "percent" else {"rate": amount}
        params = self.encode(name, duration=duration, **values)
        if temp == "absolute":
            given = self.max_basal is not None
            ceiling = self.max_basal if given else self.settings()["maxBasal"]
            if amount > ceiling + 1e-9:
                raise _Refuse("rate %s U/h is above the %s max basal %s U/h; nothing sent"
                              % (amount, "given (--max-basal)" if given else
                                 "pump's (ReadSettings)", _num(ceiling)))
            if given:
                result.notes.append("checked against --max-basal %s U/h, not the pump's settings; "
                                    "the pump refuses above its own max basal" % _num(ceiling))
        # Evidence only for one direction: a pump set to percent temps NAKs 0x4C [MMK].
        if (duration and temp == "absolute" and self.max_basal is None
                and self._pump_temp_type() == "percent"):
            raise _Refuse("the pump's temp basal type is percent (ReadSettings), so it would refuse"
                          " an absolute temp basal; use the percent command or change the type on"
                          " the pump; nothing sent")
        before = self.read("ReadBasalTemp")
        sent_at = time.monotonic()
        if not self.send(result, name, params):
            return
        now = self.after(result, "ReadBasalTemp", lambda: self.pump.read("ReadBasalTemp"))
        result.verification = now
        if now is not None:
            result.legacy.update(now)
        self._judge_temp(result, temp, amount, duration, before, now, time.monotonic() - sent_at)

    def _judge_temp(self, result, temp, amount, duration, before, now, elapsed):
        if now is None:
            return self.unverified(result, "the temp basal could not be read back")
        running = lambda state: (state["temp"], state["rate"]) if state["duration"] else None
        if duration == 0:
            matches = not now["duration"]
        else:
            minimum = duration - 1 - int(elapsed // 60)
            matches = (running(now) is not None and now["temp"] == temp
                       and abs(now["rate"] - amount) < 1e-6
                       and minimum <= now["duration"] <= duration)
        if not matches:
            return self.unverified(result, "the pump now runs %s, not what was requested"
                                   % _temp_text(now))
        if result.received:
            return result.finish(DELIVERED)
        # No ACK: only a change the pump could not have made on its own proves execution.
        if duration == 0:
            fresh = before["duration"] and now["duration"] == 0
        else:
            fresh = (running(before) is None or running(before)[0] != temp
                     or abs(running(before)[1] - amount) > 1e-6
                     or now["duration"] > before["duration"])
        if fresh:
            result.notes.append("the answer was lost, but the read-back shows the requested temp"
                                " basal newly in place (before: %s)" % _temp_text(before))
            return result.finish(DELIVERED)
        return self.unverified(result, "the pump runs %s now and ran %s before, so the read-back"
                               " cannot tell whether this command was executed"
                               % (_temp_text(now), _temp_text(before)))

    # --- bolus ----------------------------------------------------------------------------

    def bolus(self, units):
        """Deliver a normal bolus of ``units``."""
        return self.run(Result("Bolus", {"units": units}), lambda r: self._bolus(r, units))

    def _bolus(self, result, units):
        model = self.model
        result.legacy["_type"] = "BolusRequest"
        params = self.encode("Bolus", units=units)
        if not commands.supported("ReadPumpStatus", model):
            raise _Refuse("the %s has no ReadPumpStatus, so decocare cannot tell whether it is "
                          "suspended or already bolusing; bolus refused, nothing sent (use the "
                          "pump's own keys)" % model)
        ceiling = self.settings()["maxBolus"]
        if units > ceiling + 1e-9:
            raise _Refuse("%s U is above the pump's max bolus %s U (ReadSettings); nothing sent"
                          % (units, _num(ceiling)))
        status = self.read("ReadPumpStatus")
        self._status_legacy(result, status)
        if status["bolusing"]:
            raise _Refuse("a bolus is in progress (ReadPumpStatus); nothing sent")
        if status["suspended"]:
            raise _Refuse("the pump is suspended (ReadPumpStatus); nothing sent")
        seen = {_record_key(r) for r in self.page0("to remember the last bolus")
                if r.get("_type") == "Bolus"}
        if not self.send(result, "Bolus", params):
            return
        status = self.after(result, "ReadPumpStatus", lambda: self.pump.read("ReadPumpStatus"))
        if status is not None:
            self._status_legacy(result, status)
        records = self.after(result, "history page 0", self.history0)
        if records is None:
            result.notes.append(UNCERTAIN_BOLUS_ADVICE)
            return self.unverified(result, "the new bolus record could not be read")
        new = [r for r in records if r.get("_type") == "Bolus" and _record_key(r) not in seen]
        result.verification = {"status": status, "new_bolus_records": new}
        right = [r for r in new if abs(r.get("programmed", r.get("amount", -1)) - units) < 1e-6]
        if len(new) == 1 and right:
            if not result.received:
                result.notes.append("the answer was lost, but history page 0 holds exactly one "
                                    "new bolus of the requested amount")
            if status and status.get("bolusing"):
                result.notes.append("the pump is still delivering it")
            return result.finish(DELIVERED)
        result.notes.append(UNCERTAIN_BOLUS_ADVICE)
        if not new:
            why = ("history page 0 shows no new bolus record%s; a delivery may still be in flight,"
                   " so this does not prove it was not delivered"
                   % ("" if status is None else " and the pump says bolusing=%s" % status["bolusing"]))
        else:
            why = "history page 0 shows %d new bolus record(s) of %s U" % (
                len(new), ", ".join(str(r.get("programmed", r.get("amount"))) for r in new))
        return self.unverified(result, why)

    @staticmethod
    def _status_legacy(result, status):
        result.legacy.update({k: status.get(k) for k in ("status", "bolusing", "suspended")})

    # --- suspend / resume -----------------------------------------------------------------

    def set_suspend(self, suspend):
        """Suspend (True) or resume (False) insulin delivery."""
        result = Result("SetSuspend", {"suspend": bool(suspend)})
        return self.run(result, lambda r: self._set_suspend(r, bool(suspend)))

    def _set_suspend(self, result, suspend):
        params = self.encode("SetSuspend", suspend=suspend)
        has_status = commands.supported("ReadPumpStatus", self.model)
        if has_status:
            if self.read("ReadPumpStatus")["suspended"] == suspend:
                raise _Refuse("the pump is already %s (ReadPumpStatus); nothing sent"
                              % ("suspended" if suspend else "running"))
        else:   # x12: no status; the suspend/resume history records tell
            seen = {_record_key(r) for r in self.page0("to verify afterwards")}
        if not self.send(result, "SetSuspend", params):
            return
        if has_status:
            status = self.after(result, "ReadPumpStatus", lambda: self.pump.read("ReadPumpStatus"))
            result.verification = status
            if status is None:
                return self.unverified(result, "the pump status could not be read back")
            if status["suspended"] == suspend:
                if not result.received:
                    result.notes.append("the answer was lost, but the pump status changed as asked")
                return result.finish(DELIVERED)
            return self.unverified(result, "the pump status still says suspended=%s"
                                   % status["suspended"])
        records = self.after(result, "history page 0", self.history0)
        if records is None:
            return self.unverified(result, "history page 0 could not be read back")
        new = [r["_type"] for r in records if r.get("_type") in ("PumpSuspend", "PumpResume")
               and _record_key(r) not in seen]
        result.verification = {"new_records": new}
        if new[:1] == ["PumpSuspend" if suspend else "PumpResume"]:
            return result.finish(DELIVERED)
        return self.unverified(result, "history page 0 shows no new %s record"
                               % ("PumpSuspend" if suspend else "PumpResume"))

    # --- clock ----------------------------------------------------------------------------

    def set_clock(self, when):
        """Set the pump's clock to the naive local datetime ``when``."""
        result = Result("SetRTC", {"clock": when.isoformat()})
        return self.run(result, lambda r: self._set_clock(r, when))

    def _set_clock(self, result, when):
        params = self.encode("SetRTC", clock=when)
        sent_at = time.monotonic()
        if not self.send(result, "SetRTC", params):
            return
        clock = self.after(result, "ReadRTC", lambda: _as_datetime(self.pump.read("ReadRTC")))
        if clock is None:
            return self.unverified(result, "the clock could not be read back")
        result.verification = {"clock": clock.isoformat()}
        expected = when + datetime.timedelta(seconds=time.monotonic() - sent_at)
        off = abs((clock - expected).total_seconds())
        if off <= CLOCK_TOLERANCE:
            return result.finish(DELIVERED)
        return self.unverified(result, "the pump's clock reads %s, %d s from the time set"
                               % (clock.isoformat(), off))

    # --- keys and basal profile -----------------------------------------------------------

    def press_keys(self, keys):
        """Press ``keys`` one after the other; stop at the first one not ACKed.  A key press
        cannot be read back: an ACK is all the evidence there is."""
        result = Result("KeypadPush", {"keys": list(keys)})
        return self.run(result, lambda r: self._press_keys(r, keys))

    def _press_keys(self, result, keys):
        if not keys:
            raise _Refuse("no key given; keys are %s" % " ".join(KEYS))
        packets = [self.encode("KeypadPush", key=key) for key in keys]
        pressed = result.legacy["pressed"] = []
        for key, params in zip(keys, packets):
            if not self.send(result, "KeypadPush", params):
                return   # refused (or dry run): the keys before it were pressed, none after
            if not result.received:
                return self.unverified(result, "the press of %r got no answer; keys pressed "
                                       "before it: %s" % (key, pressed or "none"))
            pressed.append(key)
        result.notes.append("key presses cannot be read back; each one was ACKed")
        result.finish(DELIVERED)

    def select_profile(self, profile):
        """Make basal profile STD, A or B the active one."""
        result = Result("SelectBasalProfile", {"profile": profile})
        return self.run(result, lambda r: self._select_profile(r, profile))

    def _select_profile(self, result, profile):
        params = self.encode("SelectBasalProfile", profile=profile)
        if not self.send(result, "SelectBasalProfile", params):
            return
        settings = self.after(result, "ReadSettings", lambda: self.pump.read("ReadSettings"))
        if settings is None:
            return self.unverified(result, "the settings could not be read back")
        result.verification = {"selected_pattern": settings.get("selected_pattern")}
        if settings.get("selected_pattern") == PROFILES.get(str(profile).upper()):
            return result.finish(DELIVERED)
        return self.unverified(result, "the settings say profile %s is selected"
                               % settings.get("selected_pattern"))


def _temp_text(state):
    if not state or not state.get("duration"):
        return "no temp basal"
    unit = "%" if state["temp"] == "percent" else " U/h"
    return "%s%s for %s more min" % (state["rate"], unit, state["duration"])


def _record_key(record):
    """A history record's identity: its whole decoded content (timestamp and raw bytes)."""
    return json.dumps(record, sort_keys=True, default=str)


def _as_datetime(value):
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value))


# --- the command-line tools (bin/mm-*.py and the installed entry points) ------------------

def _parser(prog, description, dry_run=True):
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_port_options(parser)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (outcome delivered/refused/uncertain, "
                             "received and decocare's recieved, requested, read-back)")
    if dry_run:
        parser.add_argument("--dry-run", action="store_true",
                            help="read the pump and check everything, print the TransmitPacket "
                                 "that would be sent, send nothing")
    return parser


OUTCOME_HELP = """
outcomes (exit code): delivered (0) = sent once and verified by reading back;
refused (6) = nothing delivered: the pump's NAK code or decocare's own check says why
(4/5 when the port or the pump's radio failed before anything was sent);
uncertain (7) = sent once, outcome unknown: check the pump; decocare never re-sends.
"""


def _write(args, parser, act, **writer_options):
    """Open the pump, run ``act(writer) -> Result``, print it; a failure before anything was
    sent is reported as ``refused`` (with --json) and never hidden."""
    serial = cli.require_serial(args, parser)
    writer = None
    try:
        with open_pump(args.port, serial) as pump:
            writer = Writer(pump, dry_run=getattr(args, "dry_run", False), **writer_options)
            result = act(writer)
    except errors.DecocareError as exc:
        if writer is not None and writer.sent:
            raise errors.Uncertain("the write was sent once, then: %s; check the pump" % exc)
        if not args.json:
            raise
        result = Result(parser.prog, {}).finish(REFUSED, "nothing sent: %s" % exc)
        result.link_failure = exc.exit_code
    print(json.dumps(result.as_json(), indent=2, default=str) if args.json else result.text())
    if result.outcome == UNCERTAIN:
        print("%s: UNCERTAIN: %s" % (parser.prog, result.reason), file=sys.stderr)
    return result.exit_code


def _late_options(sub):
    """The shared options again after a sub-command (``... set --rate 1 --json``); SUPPRESS
    keeps a value given before the sub-command."""
    for flags, kwargs in ((("--json",), dict(action="store_true")),
                          (("--dry-run",), dict(action="store_true")),
                          (("--port",), dict()), (("--serial",), dict(type=cli.serial_arg))):
        sub.add_argument(*flags, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def _query(args, parser, read):
    with open_pump(args.port, cli.require_serial(args, parser)) as pump:
        print(json.dumps(read(pump), indent=2, default=str))
    return 0


def _start(parser, argv):
    args = parser.parse_args(argv)
    cli.setup_logging(args.verbose)
    return args


def temp_basals_main(argv=None):
    parser = _parser("mm-temp-basals.py", "Query, set or cancel a temp basal: checked against "
                     "the pump's increments and max basal, sent once, read back." + OUTCOME_HELP)
    sub = parser.add_subparsers(dest="action", required=True, metavar="query|set|percent|cancel")
    p_query = sub.add_parser("query", help="print the running temp basal {temp, rate, duration}")
    p_set = sub.add_parser("set", help="absolute temp basal: --rate U/h --duration MIN")
    p_set.add_argument("--rate", type=float, required=True, help="U/h, on the model's step")
    p_set.add_argument("--max-basal", type=float, default=None,
                       help="check against this max basal (U/h) instead of reading ReadSettings "
                            "(one RF exchange less; the pump still refuses above its own)")
    p_pct = sub.add_parser("percent", help="percent temp basal: --percent P --duration MIN")
    p_pct.add_argument("--percent", type=int, required=True, help="0-100 %%")
    for p in (p_set, p_pct):
        p.add_argument("--duration", type=int, required=True,
                       help="minutes, a multiple of 30 up to 1440 (0 cancels)")
    p_cancel = sub.add_parser("cancel", help="cancel the running temp basal")
    for p in (p_query, p_set, p_pct, p_cancel):
        _late_options(p)
    args = _start(parser, argv)
    if args.action == "query":
        return _query(args, parser, lambda pump: pump.read("ReadBasalTemp"))
    if args.action == "cancel":
        return _write(args, parser, lambda w: w.cancel_temp_basal())
    if args.action == "set":
        return _write(args, parser, lambda w: w.temp_basal(rate=args.rate, duration=args.duration),
                      max_basal=args.max_basal)
    return _write(args, parser, lambda w: w.temp_basal(percent=args.percent, duration=args.duration))


def bolus_main(argv=None):
    parser = _parser("mm-bolus.py", "Deliver a normal bolus: refused while bolusing or suspended "
                     "or above the pump's max bolus; sent once; verified with the pump status and "
                     "the newest Bolus record of history page 0. An uncertain bolus must never be "
                     "repeated before checking the pump." + OUTCOME_HELP)
    parser.add_argument("units", type=float, help="units of insulin, on the model's bolus step")
    parser.add_argument("--yes", action="store_true",
                        help="confirm: really deliver this bolus (required unless --dry-run)")
    args = _start(parser, argv)
    if not (args.yes or args.dry_run):
        parser.error("a bolus needs --yes to confirm (or --dry-run to only show it)")
    return _write(args, parser, lambda w: w.bolus(args.units))


def set_suspend_main(argv=None):
    parser = _parser("mm-set-suspend.py", "Query, suspend or resume insulin delivery; "
                     "verified with ReadPumpStatus (x12: history page 0)." + OUTCOME_HELP)
    parser.add_argument("action", choices=("query", "suspend", "resume"))
    args = _start(parser, argv)
    if args.action == "query":
        return _query(args, parser, lambda pump: pump.read("ReadPumpStatus"))
    return _write(args, parser, lambda w: w.set_suspend(args.action == "suspend"))


def _zone(name):
    from dateutil import tz
    zone = tz.gettz(name) if name else tz.tzlocal()
    if zone is None:
        raise errors.BadInput("unknown time zone %r (use a name like Europe/Paris)" % name)
    return zone


def pump_time(to, timezone=None):
    """The naive pump-local time for ``--to``: 'now' = the host's clock converted to the pump's
    zone (``timezone``, default the host's); an ISO time with an offset is converted likewise;
    one without an offset is taken as pump-local already."""
    from dateutil import parser as dateparser
    zone = _zone(timezone)
    if to == "now":
        return datetime.datetime.now(zone).replace(tzinfo=None, microsecond=0)
    try:
        when = dateparser.isoparse(to)
    except ValueError as exc:
        raise errors.BadInput("--to %r is not an ISO 8601 time or 'now' (%s)" % (to, exc))
    if when.tzinfo is not None:
        when = when.astimezone(zone)
    return when.replace(tzinfo=None, microsecond=0)


def set_rtc_main(argv=None):
    parser = _parser("mm-set-rtc.py", "Query or set the pump's clock (naive local time); "
                     "verified with ReadRTC within %d s." % CLOCK_TOLERANCE + OUTCOME_HELP)
    parser.add_argument("action", choices=("query", "set"))
    parser.add_argument("--to", default="now",
                        help="'now' (default: the host's clock in the pump's zone) or an ISO "
                             "time, e.g. 2024-03-01T14:05:00 (pump-local) or with an offset")
    parser.add_argument("--timezone", default=None,
                        help="the pump's time zone when it differs from the host's (e.g. "
                             "America/New_York)")
    args = _start(parser, argv)
    if args.action == "query":
        return _query(args, parser, lambda pump: {"clock": pump.read("ReadRTC")})
    when = pump_time(args.to, args.timezone)
    return _write(args, parser, lambda w: w.set_clock(when))


def press_key_main(argv=None):
    parser = _parser("mm-press-key.py", "Press pump keys remotely, one KeypadPush each, in order; "
                     "stops at the first key the pump does not ACK. Presses cannot be read back."
                     + OUTCOME_HELP)
    parser.add_argument("keys", nargs="+", type=str.lower, choices=tuple(KEYS), metavar="KEY",
                        help="one or more of: %s" % " ".join(KEYS))
    args = _start(parser, argv)
    return _write(args, parser, lambda w: w.press_keys(args.keys))


def select_profile_main(argv=None):
    parser = _parser("mm-select-profile.py", "Query or select the active basal profile "
                     "(STD, A, B); verified with ReadSettings." + OUTCOME_HELP)
    parser.add_argument("profile", type=str.upper, choices=("QUERY",) + tuple(PROFILES),
                        metavar="query|STD|A|B")
    args = _start(parser, argv)
    if args.profile == "QUERY":
        return _query(args, parser, lambda pump: {"selected_pattern": PROFILES_BY_CODE.get(
            pump.read("ReadSettings")["selected_pattern"])})
    return _write(args, parser, lambda w: w.select_profile(args.profile))


def _entry(main, prog):
    """A console-script entry: typed errors become one stderr line and their exit code."""
    def entry():
        cli.run(main, prog=prog)
    entry.__doc__ = "Run %s (setup.py entry point and bin/%s)." % (prog, prog)
    return entry


temp_basals_cli = _entry(temp_basals_main, "mm-temp-basals.py")
bolus_cli = _entry(bolus_main, "mm-bolus.py")
set_suspend_cli = _entry(set_suspend_main, "mm-set-suspend.py")
set_rtc_cli = _entry(set_rtc_main, "mm-set-rtc.py")
press_key_cli = _entry(press_key_main, "mm-press-key.py")
select_profile_cli = _entry(select_profile_main, "mm-select-profile.py")

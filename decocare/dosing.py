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
import datetime
import json
import logging
import math
import time

from . import commands, errors, history
from .models import get_model
from .vocabulary import KEYS, pattern_number

log = logging.getLogger(__name__)

DELIVERED, REFUSED, UNCERTAIN, DRY_RUN = "delivered", "refused", "uncertain", "dry-run"
EXIT_CODES = {DELIVERED: errors.EXIT_OK, REFUSED: errors.EXIT_REFUSED,
              UNCERTAIN: errors.EXIT_UNCERTAIN, DRY_RUN: errors.EXIT_OK}

CLOCK_TOLERANCE = 5           # seconds between the set time and the read-back
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
        self.sent_at = None            # when it was sent (ISO with the host's zone)

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
            out["code_meaning"] = errors.nak_text(self.code)
        if self.verification is not None:
            out["verification"] = self.verification
        if self.notes:
            out["notes"] = list(self.notes)
        out.update(self.legacy)
        # openaps' keys (its medtronic vendor printed these with decocare 0.0.31)
        out["timestamp"] = self.sent_at or _zoned_now()
        if "units" in self.requested:
            out["units"] = self.requested["units"]
        for key in ("temp", "rate", "duration"):
            if key in self.requested and key not in out:
                out[key] = self.requested[key]
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
            lines.append("pump code 0x%02x: %s" % (self.code, errors.nak_text(self.code)))
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


def _zoned_now():
    return datetime.datetime.now().astimezone().replace(microsecond=0).isoformat()


def _num(value):
    """Print 2.0 as 2.0 and 1.025 as 1.025 (no float noise in reasons)."""
    return float("%.4f" % value)


class Writer:
    """The write flow for one pump (a ``commands.Pump``).  ``dry_run``: do the checks and show
    the TransmitPacket, send nothing."""

    def __init__(self, pump, dry_run=False, max_basal=None, journal=None):
        self.pump = pump
        self.dry_run = dry_run
        self.max_basal = max_basal     # given by the caller: ReadSettings is not read for it
        self.journal = journal         # a journal.Journal: this host's earlier sends (or None)
        self._entry = None             # this send's journal entry
        self.sent = False              # a write was handed to the session (whatever happens next)
        self._writes_before = pump.writes_sent
        self._model = None
        self._settings = None

    @property
    def transmitted(self):
        """True once a write's TransmitPacket may have left: after an interrupt or a broken port
        this tells "uncertain" (check the pump) from "not sent"."""
        return self.pump.writes_sent > self._writes_before

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
        result.requested["params"] = bytes(params).hex()
        result.requested["packet"] = self.pump.packet(name, params).hex()
        if self.dry_run:
            result.finish(DRY_RUN)
            return False
        # a model taken from the radio window is read now, not inside the write, where its
        # failure would pass for the write's own (uncertain)
        self._before("ReadPumpModel", lambda: self.pump.confirm_model(name))
        if self.journal is not None:
            self._entry = self.journal.sent(name, params)
        result.sent = self.sent = True
        result.sent_at = _zoned_now()
        try:
            self.pump.write(name, bytes(params))
            result.received = True
        except errors.Refused as exc:
            result.finish(REFUSED, "the pump refused %s (NAK 0x%02x: %s); nothing delivered"
                          % (name, exc.code or 0, errors.nak_text(exc.code)),
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

    def temp_basal(self, rate=None, percent=None, duration=0, round_down=False, reason=None):
        """Set an absolute (``rate`` U/h) or ``percent`` temp basal for ``duration`` minutes;
        rate 0 and duration 0 cancel.  ``round_down``: a rate off the pump's step is rounded down
        to it (oref0's suggestions; less insulin, never more) instead of refused; ``reason``:
        why it was asked (oref0's), kept in the notes."""
        temp = "percent" if percent is not None else "absolute"
        amount = percent if percent is not None else rate
        result = Result("TempBasalPercent" if temp == "percent" else "TempBasal",
                        {"temp": temp, "rate": amount, "duration": duration})
        if reason:
            result.notes.append("asked for: %s" % reason)

        def flow(r):
            value = amount
            if round_down and temp == "absolute":
                value = self._round_down(r, amount)
            self._temp_basal(r, temp, value, duration)
        return self.run(result, flow)

    def _round_down(self, result, rate):
        """``rate`` on the model's basal step, rounded down; the result says when it changed."""
        if not rate >= 0:
            raise _Refuse("temp basal rate %r U/h is not a rate; nothing sent" % (rate,))
        step = self.model.basal_increment(rate)
        down = round(math.floor(rate / step + 1e-9) * step, 3)
        if self.model.basal_increment(down) != step:      # crossed a step boundary downwards
            step = self.model.basal_increment(down)
            down = round(math.floor(rate / step + 1e-9) * step, 3)
        if abs(down - rate) > 1e-9:
            result.notes.append("rate %s U/h rounded down to the %s's %s U/h step: %s U/h"
                                % (_num(rate), self.model, _num(step), _num(down)))
            result.requested["rate"] = down
        return down

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
        sent_at = time.monotonic()
        if not self.send(result, name, params):
            return
        now = self.after(result, "ReadBasalTemp", lambda: self.pump.read("ReadBasalTemp"))
        result.verification = now
        if now is not None:
            result.legacy.update(now)
        self._judge_temp(result, temp, amount, duration, now, sent_at)

    def _judge_temp(self, result, temp, amount, duration, now, sent_at):
        if now is None:
            return self.unverified(result, "the temp basal could not be read back")
        if duration == 0:
            matches = not now["duration"]
        else:
            minimum = duration - 1 - int((time.monotonic() - sent_at) // 60)
            matches = (now["duration"] and now["temp"] == temp and abs(now["rate"] - amount) < 1e-6
                       and minimum <= now["duration"] <= duration)
        if not matches:
            return self.unverified(result, "the pump now runs %s, not what was requested"
                                   % _temp_text(now))
        if result.received:
            return result.finish(DELIVERED)
        # No ACK: the same temp basal set just before would read back the same, so only the
        # pump's own record of it, stamped after the send, proves this command was executed;
        # the pump stamps whole seconds, so the write journal must rule out an identical send
        # just before.  (Reading ReadBasalTemp before every send would cost each loop cycle an
        # RF exchange for what only this rare case needs.)
        stamp, seconds = self._temp_record_since(result, temp, amount, duration, sent_at)
        if stamp is None:
            return self.unverified(result, "the pump runs %s now, but history page 0 shows no such"
                                   " temp basal set after the send (it may have been running "
                                   "before), so the read-back cannot tell whether this command "
                                   "was executed" % _temp_text(now))
        other = self.journal.identical_before(self._entry, seconds) if self.journal else None
        if other is None:
            return self.unverified(result, "history page 0 records the requested temp basal at %s,"
                                   " but the pump stamps whole seconds and no write journal rules"
                                   " out an identical one sent moments before"
                                   % stamp.isoformat())
        if other:
            return self.unverified(result, "history page 0 records the requested temp basal at %s,"
                                   " but an identical one was sent within %d s before this one,"
                                   " and the pump's whole-second stamps cannot tell them apart"
                                   % (stamp.isoformat(), seconds))
        result.notes.append("the answer was lost, but the read-back shows the requested temp"
                            " basal, history page 0 records it at %s, after the send, and no "
                            "identical one was sent in the %d s before" % (stamp.isoformat(), seconds))
        return result.finish(DELIVERED)

    def _temp_record_since(self, result, temp, amount, duration, sent_at):
        """(stamp, seconds): the timestamp of the pump's TempBasal + TempBasalDuration records of
        this temp basal when they are stamped at or after the send (else None), and how many
        seconds before the send an identical temp basal's records could carry such a stamp.
        The pump's clock at the send is ReadRTC less the seconds since; its clock and the
        records count whole seconds, so one second of slack each way."""
        clock = self.after(result, "ReadRTC", lambda: _as_datetime(self.pump.read("ReadRTC")))
        read_at = time.monotonic()
        seconds = math.ceil(read_at - sent_at) + 3
        if clock is None:
            return None, seconds
        records = self.after(result, "history page 0", self.history0)
        if records is None:
            return None, seconds
        earliest = clock - datetime.timedelta(seconds=math.ceil(read_at - sent_at) + 1)
        latest = clock + datetime.timedelta(seconds=1)
        lengths = {r.get("timestamp") for r in records if r.get("_type") == "TempBasalDuration"
                   and r.get("duration (min)") == duration}
        for record in records:
            if (record.get("_type") == "TempBasal" and record.get("timestamp") in lengths
                    and record.get("temp") == temp and abs(record.get("rate", -1) - amount) < 1e-6):
                try:
                    stamp = _as_datetime(record["timestamp"])
                except (TypeError, ValueError):
                    continue
                if earliest <= stamp <= latest:
                    return stamp, seconds
        return None, seconds

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
        if settings.get("selected_pattern") == pattern_number(profile):
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

"""The pump's radio window, remembered across tool runs: when a PowerControl switched the
pump's radio on and until when it stays on, in a small JSON file keyed by pump serial -- and
the model ReadPumpModel reported inside that window, through which port.

Why: a PowerControl costs ~17 s; a session that knows the window lapsed wakes at once (no
failed probe first) and one that knows it is about to close renews it before a command that
would outlast it (the rule and its numbers: docs/protocol-client.md, "The radio window"); and
a tool run inside a window known open needs no model read of its own -- one serial behind one
port within one window is one pump -- so its first real read is the wake probe (~0.14 s less
each run of a loop).
Nothing here ever stops a command: a missing, corrupt or unwritable file only means "not known".
"""
import json
import logging
import os
import time

log = logging.getLogger(__name__)

STATE_DIR_ENV = "DECOCARE_STATE_DIR"
STATE_FILE = "radio-window.json"
OPEN, CLOSING, LAPSED, UNKNOWN = "open", "closing", "lapsed", "unknown"
MODEL_NEED = 5.0        # s the window must stay open for a remembered model to stand in for a read


def _port_key(port):
    """The port as remembered: a device path resolved through its links (an emulator's
    ``carelink.ttyUSB0`` link names a new pty when it restarts), anything else as given."""
    if port is None:
        return None
    port = str(port)
    return os.path.realpath(port) if "://" not in port else port


def state_dir():
    """Where decocare's state files live (this radio-window file, the write journal):
    $DECOCARE_STATE_DIR, else $XDG_RUNTIME_DIR/decocare, else ~/.cache/decocare."""
    if os.environ.get(STATE_DIR_ENV):
        return os.environ[STATE_DIR_ENV]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "decocare")
    return os.path.join(os.path.expanduser("~"), ".cache", "decocare")


def save_state(path, data, what):
    """Write ``data`` as JSON to ``path`` through a temporary name (a reader never sees half a
    file); False, logged, when it cannot be written -- a state file is never worth a failure."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.info("%s %s not written (%s)", what, path, exc)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


class RadioWindow:
    """When the radio of pump ``serial`` was switched on and for how long, across tool runs: one
    JSON object keyed by pump serial in ``path`` (default ``state_dir()/radio-window.json``),
    ``{"on": t, "minutes": m, "until": [earliest, latest]}`` in wall-clock seconds, plus
    ``"model"`` and ``"port"`` once ReadPumpModel answered inside it.  Only what a PowerControl
    ACK proved opens a record.  A missing, corrupt or unwritable file only means "not
    known": nothing here ever stops a command."""

    def __init__(self, serial, path=None, clock=time.time, port=None):
        self.serial = str(serial)
        self.path = path or os.path.join(state_dir(), STATE_FILE)
        self.clock = clock
        self.port = _port_key(port)

    def _load_all(self):
        try:
            with open(self.path) as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            if not isinstance(exc, FileNotFoundError):
                log.info("radio window file %s unreadable (%s): taken as unknown", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def record(self):
        """This pump's record, or None (missing, malformed, or from a clock that went back)."""
        rec = self._load_all().get(self.serial)
        try:
            on, (earliest, latest), minutes = float(rec["on"]), rec["until"], int(rec["minutes"])
            earliest, latest = float(earliest), float(latest)
        except (TypeError, KeyError, ValueError):
            return None
        now = self.clock()
        if not (on <= earliest <= latest) or on > now + 1.0 or latest - on > minutes * 60 + 60:
            return None
        out = dict(on=on, until=(earliest, latest), minutes=minutes)
        if isinstance(rec.get("model"), str) and isinstance(rec.get("port"), str):
            out.update(model=rec["model"], port=rec["port"])
        return out

    def state(self, need=0.0):
        """(OPEN | CLOSING | LAPSED | UNKNOWN, seconds left): OPEN when the radio stays on for
        ``need`` seconds more for sure, CLOSING when it is on now but may go off within
        ``need``, LAPSED when it is off for sure, UNKNOWN without a record (or in the seconds
        where the record cannot tell)."""
        rec = self.record()
        if rec is None:
            return UNKNOWN, None
        now = self.clock()
        earliest, latest = rec["until"]
        if now >= latest:
            return LAPSED, 0.0
        if now >= earliest:
            return UNKNOWN, None
        return (OPEN if now + need < earliest else CLOSING), earliest - now

    def remember_model(self, model):
        """ReadPumpModel answered ``model`` through this port while the window is on: kept with
        the window, so a later tool run inside it needs no model read of its own.  A new window
        (PowerControl), a forgotten one, or another port: not remembered -- asked again."""
        rec = self.record()
        if rec is None or self.port is None or self.state()[0] not in (OPEN, CLOSING):
            return
        self._save(dict(on=rec["on"], minutes=rec["minutes"], until=list(rec["until"]),
                        model=str(model), port=self.port))

    def model(self, need=MODEL_NEED):
        """The model ReadPumpModel reported in this window through this port, while the window
        is known open for ``need`` seconds more; else None (the model is read)."""
        rec = self.record()
        if rec is None or self.port is None or rec.get("port") != self.port:
            return None
        return rec.get("model") if self.state(need)[0] == OPEN else None

    def _save(self, rec):
        data = self._load_all()
        if rec is None:
            data.pop(self.serial, None)
        else:
            data[self.serial] = rec
        save_state(self.path, data, "radio window file")

    def woke(self, minutes, ack_ago=(0.0, 0.0)):
        """A PowerControl [01, minutes] was ACKed; the ACK came in between ``ack_ago`` = (most,
        least) seconds ago -- the pump's window runs from then."""
        now = self.clock()
        on_lo, on_hi = now - max(ack_ago), now - min(ack_ago)
        self._save(dict(on=round(on_lo, 3), minutes=int(minutes),
                        until=[round(on_lo + 60 * minutes, 3), round(on_hi + 60 * minutes, 3)]))

    def off(self):
        """The radio was switched off (PowerControl [00 00]) or is not answering."""
        now = self.clock()
        self._save(dict(on=round(now, 3), minutes=0, until=[round(now, 3), round(now, 3)]))

    def forget(self):
        """The record proved wrong (the pump did not answer): not known any more."""
        if self.record() is not None:
            self._save(None)

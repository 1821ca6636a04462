"""The writes this host sent to each pump, newest last: a small JSON file beside the radio
window's (``radiowindow.state_dir()``), keyed by pump serial.

Why: a temp basal whose answer was lost is proved executed by its history record stamped after
the send -- but the pump stamps whole seconds, so an identical temp basal sent a second or two
earlier (a loop run again at once) would pass for it.  Reading ReadBasalTemp before every send
tells the two apart at one RF exchange per loop cycle; this file tells them apart, for every
write decocare sent, at none (docs/dosing.md).  A journal that cannot be read or written only
means "not known": the lost answer then stays uncertain.  Nothing here ever stops a command.
"""
import json
import logging
import os
import time

from .radiowindow import save_state, state_dir

log = logging.getLogger(__name__)

JOURNAL_FILE = "writes.json"
KEEP = 32                   # entries kept per pump: far more than any ambiguity needs


class Journal:
    """``{serial: [[wall-clock time, pid, command, params hex], ...]}`` in ``path`` (default
    ``state_dir()/writes.json``)."""

    def __init__(self, serial, path=None, clock=time.time):
        self.serial = str(serial)
        self.path = path or os.path.join(state_dir(), JOURNAL_FILE)
        self.clock = clock

    def _load(self):
        """Every pump's entries; None when the file exists but cannot be read."""
        try:
            with open(self.path) as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.info("write journal %s unreadable (%s)", self.path, exc)
            return None
        return data if isinstance(data, dict) else None

    def sent(self, command, params):
        """Note ``command`` with ``params`` as sent now (called just before the TransmitPacket);
        the entry, or None when it could not be written."""
        data = self._load()
        if data is None:
            return None
        entry = [round(self.clock(), 3), os.getpid(), str(command), bytes(params).hex()]
        mine = data.get(self.serial)
        data[self.serial] = ((mine if isinstance(mine, list) else []) + [entry])[-KEEP:]
        return entry if save_state(self.path, data, "write journal") else None

    def identical_before(self, entry, seconds):
        """Whether another send of ``entry``'s command and params is journaled within
        ``seconds`` before it (or after it: a clock that went back); None when not known (the
        journal unreadable, or ``entry`` -- this send -- not in it)."""
        data = self._load()
        rows = data.get(self.serial) if data else None
        if entry is None or not isinstance(rows, list) or list(entry) not in rows:
            return None
        others = list(rows)
        others.remove(list(entry))      # this send once: a twin in the same millisecond counts
        return any(isinstance(row, list) and len(row) == 4 and row[2:] == list(entry[2:])
                   and isinstance(row[0], (int, float)) and row[0] >= entry[0] - seconds
                   for row in others)

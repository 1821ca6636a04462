"""The ledger: what the emulated pump really did, one dict per command it executed.

Tests and users read it to check a client's claims ("delivered", "refused", "uncertain")
against the truth: each entry has ``op`` (the name in ``decocare.commands.COMMANDS``), the time
on the pump's clock, the parameters, what the host was told (``reply``: ack / data / lost)
and, for deliveries, ``units`` (bolus) or ``rate`` + ``duration`` (temp basal).
"""
import json
import threading

from ..errors import BadInput


class Ledger(list):
    """A list of entries that can also append each one as a JSON line to a file."""

    def __init__(self, path=None):
        super().__init__()
        self.path = path
        self._lock = threading.Lock()
        if path:
            try:
                with open(path, "a"):
                    pass
            except OSError as exc:
                raise BadInput("ledger %s cannot be written (%s)" % (path, exc.strerror or exc))

    def add(self, entry):
        with self._lock:
            self.append(entry)
            if self.path:
                with open(self.path, "a") as fh:
                    fh.write(json.dumps(entry, sort_keys=True) + "\n")
        return entry

    def deliveries(self, op=None):
        """Entries that changed insulin delivery (optionally only ``op``)."""
        return [e for e in self if e.get("doses") and (op is None or e["op"] == op)]

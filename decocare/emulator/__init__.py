"""An emulated CareLink USB stick + MiniMed Paradigm pump (the demo pump, issue 4).

Every decocare tool, the demo and the tests talk to it through the same serial code path as a
real ``/dev/ttyUSB0``: in-process through the pyserial URL ``emulator://<id>`` (``Emulator.url``),
or from any process through a pseudo-terminal (``serve_pty``, ``python -m decocare.emulator``).

It reuses the codec (lib, frames, models, the commands table, the history encoders) and never
the client (link, stick, session, download), so a client bug cannot be mirrored here.  (Of the
client's state it touches one thing: starting, it drops the remembered radio window of its
serial, ``radiowindow``, which belonged to another pump.)
"""
import datetime
import itertools
import os
import threading

from ..errors import BadInput
from ..models import get_model
from ..pages import KINDS, parse_page_file
from ..radiowindow import RadioWindow
from .faults import Faults
from .ledger import Ledger
from .pump import Pump
from .stick import Clock, Stick, Timing

__all__ = ["Emulator", "get", "load_pages"]

_INSTANCES = {}
_IDS = itertools.count(1)
_LOCK = threading.Lock()



def load_pages(folder):
    """``{kind: {n: bytes}}`` from a folder of ``ReadHistoryData-page-N.data`` files (glucose and
    ISIG pages too when present), as decocare's download saves them (e.g. the user's ``logs/``)."""
    if not os.path.isdir(folder):
        raise BadInput("pages folder %s does not exist" % folder)
    found = {kind: {} for kind in KINDS}
    for name in os.listdir(folder):
        page = parse_page_file(name)
        if page:
            with open(os.path.join(folder, name), "rb") as fh:
                found[page[0]][page[1]] = fh.read()
    pages = found["ReadHistoryData"]
    if not pages:
        raise BadInput("no ReadHistoryData-page-N.data files in %s" % folder)
    missing = [n for n in range(max(pages) + 1) if n not in pages]
    if missing:
        raise BadInput("%s: history pages %s are missing (pages must be 0..N)" % (folder, missing))
    return found


class Emulator:
    """One stick with one pump behind it.

    model, serial   the pump ("522", "208850"); pages: a folder of saved pages served
    byte-identical, else a generated history (``seed``); timing "fast" (tests) or "real"
    (spec §8 latencies); faults: a spec string (see ``faults.help_text()``) or dict;
    ledger: a file to append one JSON line per executed command (``.ledger`` is always kept).
    """

    def __init__(self, model="522", serial="208850", pages=None, timing="fast", faults=None,
                 ledger=None, seed=0, weeks=3, cur_page=None, firmware=None, start=None,
                 stick_serial="0c1700", region=0x00):
        model = get_model(model).number
        if cur_page is not None and not (isinstance(cur_page, int) and 0 <= cur_page <= 0xFFFFFFFF):
            raise BadInput("cur_page must be a page number from 0 to 4294967295, got %r" % (cur_page,))
        if not (isinstance(seed, int) and seed >= 0) or not (isinstance(weeks, int) and 0 < weeks <= 52):
            raise BadInput("seed must be 0 or more and weeks 1-52, got seed=%r weeks=%r" % (seed, weeks))
        self.faults = Faults(faults)
        self.timing = Timing(timing)
        self.clock = Clock()
        self.ledger = Ledger(ledger)
        start = start or datetime.datetime.now().replace(microsecond=0)
        kwargs = {}
        if pages is not None:
            found = load_pages(pages)
            hist = found["ReadHistoryData"]
            kwargs = dict(pages=[hist[n] for n in sorted(hist)], glucose=found["ReadGlucoseHistory"],
                          isig=found["ReadISIGHistory"])
        else:
            from .generate import generate
            kwargs = generate(model, start, seed=seed, weeks=weeks)
        self.pump = Pump(model, serial, self.clock, self.timing, page_counter=cur_page,
                         firmware=firmware, start=start, awake="asleep" not in self.faults.flags,
                         **kwargs)
        self.stick = Stick(self.pump, self.faults, self.timing, self.clock, self.ledger,
                           stick_serial=stick_serial, region=region)
        # A new emulated pump: what a client remembers of this serial's radio window (and the
        # model answered in it) belonged to another one -- its successor may differ in model.
        RadioWindow(serial).forget()
        self._server = None
        with _LOCK:
            self.id = str(next(_IDS))
            _INSTANCES[self.id] = self

    @property
    def url(self):
        return "emulator://%s" % self.id

    @property
    def fault_counts(self):
        return self.faults.counts

    def force(self, fault, times=1):
        """Make ``fault`` happen at its next ``times`` opportunities (see faults.POINTS)."""
        self.faults.force(fault, times)

    def advance(self, seconds):
        """Move the emulated clock forward (RF window, bolus, temp basal) without waiting."""
        self.clock.advance(seconds)

    def write(self, data):
        self.stick.write(data)
        return len(data)

    def read(self, size, timeout=None):
        return self.stick.read(size, timeout)

    def in_waiting(self):
        return self.stick.in_waiting()

    def reset_input(self):
        self.stick.reset_input()

    def serve_pty(self, link=None):
        """Serve on a new pseudo-terminal; returns the port path (``link`` when given, a symlink
        to the pty).  Stopped by ``close()``."""
        from .pty import PtyServer
        if self._server is None:
            self._server = PtyServer(self.stick, link)
        return self._server.port

    def serving_error(self):
        """Why the pty server stopped on its own (None while it serves)."""
        return self._server.error if self._server is not None else None

    def close(self):
        if self._server is not None:
            self._server.stop()
            self._server = None
        with _LOCK:
            _INSTANCES.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def get(instance_id):
    """The live emulator ``emulator://<id>`` names (None when closed or unknown)."""
    with _LOCK:
        return _INSTANCES.get(str(instance_id))

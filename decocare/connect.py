"""Open a pump: port -> stick -> session -> Pump, awake.  What every tool (and a script using the
library) does first; it knows the layers' order and nothing about command lines.
"""
import contextlib

from .commands import Pump
from .link import Link
from .scan import find_port
from .radiowindow import RadioWindow
from .session import Session
from .stick import Stick


@contextlib.contextmanager
def open_pump(port, serial, model=None, minutes=10, wake=True, stick_options=None,
              session_options=None, window=True, recall=True):
    """Yield a ``commands.Pump`` on ``port`` (default: the stick ``scan.find_port`` finds) for the
    pump ``serial``.  Unless ``wake`` is False, the model read (ReadPumpModel, which every tool
    needs) runs first and doubles as the wake probe: its answer is the model (a ``model`` given
    that disagrees is an error); PowerControl (~17 s) is sent only when it gets no answer, or
    at once when the pump's radio window is known to have lapsed.  ``window``: remember the
    radio window across runs (``radiowindow.RadioWindow``; a RadioWindow, True for the default
    file, False for none); inside a window known open whose model read already answered,
    that answer is the model and nothing is sent here (``recall=False``: ask the pump anyway,
    for a caller whose only command is this check).  ``stick_options``/``session_options``
    tune timing (tests match the emulator's fast timing with them)."""
    port = port or find_port()
    if window is True:
        window = RadioWindow(serial, port=port)
    with Link(port) as link:
        stick = Stick(link, **(stick_options or {}))
        stick.open()
        options = dict(session_options or {})
        options.setdefault("window", window or None)
        pump = Pump(Session(stick, serial, **options), model=model)
        if wake:
            pump.ensure_awake(minutes, recall=recall)
        yield pump

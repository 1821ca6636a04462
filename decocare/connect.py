"""Open a pump: port -> stick -> session -> Pump, awake.  What every tool (and a script using the
library) does first; it knows the layers' order and nothing about command lines.
"""
import contextlib

from .commands import Pump
from .link import Link
from .scan import find_port
from .session import Session
from .stick import Stick


@contextlib.contextmanager
def open_pump(port, serial, model=None, minutes=10, wake=True, stick_options=None,
              session_options=None):
    """Yield a ``commands.Pump`` on ``port`` (default: the stick ``scan.find_port`` finds) for the
    pump ``serial``.  Unless ``wake`` is False, a ReadPumpModel probe runs first and its answer
    is the model (a ``model`` given that disagrees is an error); PowerControl (~17 s) is sent
    only when the probe gets no answer.  ``stick_options``/``session_options`` tune timing
    (tests match the emulator's fast timing with them)."""
    with Link(port or find_port()) as link:
        stick = Stick(link, **(stick_options or {}))
        stick.open()
        pump = Pump(Session(stick, serial, **(session_options or {})), model=model)
        if wake:
            pump.ensure_awake(minutes)
        yield pump

"""pyserial URL handler ``emulator://``: the built-in stick + pump, in-process.

``emulator://<id>`` opens the live ``Emulator`` with that id (``Emulator.url``);
``emulator://?model=523&serial=208850&pages=DIR&timing=fast&faults=SPEC&seed=N`` creates a
fresh one, closed with the port.
"""
import urllib.parse

from serial.serialutil import SerialException

from .. import emulator
from ..errors import DecocareError
from .device import DevicePort

OPTIONS = ("model", "serial", "pages", "timing", "faults", "ledger", "seed", "weeks", "cur_page", "firmware")
NUMBERS = ("seed", "weeks", "cur_page")


class Serial(DevicePort):
    """A serial port whose other end is an emulated CareLink stick."""
    scheme = "emulator"

    def open_device(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.netloc:
            found = emulator.get(parts.netloc)
            if found is None:
                raise SerialException("no running emulator %s (closed?)" % url)
            return found, False
        options = {}
        for key, values in urllib.parse.parse_qs(parts.query).items():
            if key not in OPTIONS:
                raise SerialException("unknown option %r in %s (known: %s)" % (key, url, ", ".join(OPTIONS)))
            options[key] = values[-1]
        try:
            for key in NUMBERS:
                if key in options:
                    options[key] = int(options[key])
            return emulator.Emulator(**options), True
        except (DecocareError, ValueError) as err:
            raise SerialException("cannot start the emulator: %s" % err)

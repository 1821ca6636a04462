"""pyserial URL handler ``emulator://``: the built-in stick + pump, in-process.

``emulator://<id>`` opens the live ``Emulator`` with that id (``Emulator.url``);
``emulator://?model=523&serial=208850&pages=DIR&timing=fast&faults=SPEC&seed=N`` creates a
fresh one, closed with the port.
"""
import time
import urllib.parse

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from .. import emulator
from ..errors import DecocareError

OPTIONS = ("model", "serial", "pages", "timing", "faults", "ledger", "seed", "weeks", "cur_page", "firmware")


class Serial(SerialBase):
    """A serial port whose other end is an emulated CareLink stick."""

    def open(self):
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        self._owned = False
        self.emulator = self._from_url(self.port)
        self.is_open = True

    def _from_url(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "emulator":
            raise SerialException("expected a URL emulator://ID or emulator://?model=...: %r" % url)
        if parts.netloc:
            found = emulator.get(parts.netloc)
            if found is None:
                raise SerialException("no running emulator %s (closed?)" % url)
            return found
        options = {}
        for key, values in urllib.parse.parse_qs(parts.query).items():
            if key not in OPTIONS:
                raise SerialException("unknown option %r in %s (known: %s)" % (key, url, ", ".join(OPTIONS)))
            options[key] = values[-1]
        for key in ("seed", "weeks", "cur_page"):
            if key in options:
                options[key] = int(options[key])
        try:
            made = emulator.Emulator(**options)
        except (DecocareError, ValueError) as err:
            raise SerialException("cannot start the emulator: %s" % err)
        self._owned = True
        return made

    def close(self):
        if self.is_open and self._owned:
            self.emulator.close()
        self.is_open = False

    def _reconfigure_port(self):
        """Baud rate, parity and flow control mean nothing to the stick (spec §2.1)."""

    def _check(self):
        if not self.is_open:
            raise PortNotOpenError()

    @property
    def in_waiting(self):
        self._check()
        return self.emulator.stick.in_waiting()

    def read(self, size=1):
        self._check()
        return self.emulator.read(size, self._timeout)

    def write(self, data):
        self._check()
        return self.emulator.write(bytes(data))

    def reset_input_buffer(self):
        self._check()
        self.emulator.stick.reset_input()

    def reset_output_buffer(self):
        self._check()

    def flush(self):
        self._check()

    def send_break(self, duration=0.25):
        time.sleep(duration)

    def _update_break_state(self):
        pass

    def _update_rts_state(self):
        pass

    def _update_dtr_state(self):
        pass

    @property
    def cts(self):
        return True

    @property
    def dsr(self):
        return True

    @property
    def ri(self):
        return False

    @property
    def cd(self):
        return True

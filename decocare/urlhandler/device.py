"""The one pyserial adapter our URL handlers share: a ``SerialBase`` whose other end is an
in-process device (the emulated stick, a replayed transcript) instead of a file descriptor.

A device offers ``write(bytes)``, ``read(size, timeout)``, ``in_waiting()``, ``reset_input()``
and ``close()``; a handler says how a URL opens one (``open_device``).  Baud rate, parity and
flow control mean nothing to the stick (spec protocol.md §2.1), so they are accepted and ignored.
"""
import time

from serial.serialutil import PortNotOpenError, SerialBase, SerialException


class DevicePort(SerialBase):
    scheme = None                       # the URL scheme the subclass serves

    def open_device(self, url):
        """(device, owned): the device ``url`` names; ``owned`` -> closed with the port."""
        raise NotImplementedError

    def open(self):
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        if not str(self._port).lower().startswith(self.scheme + "://"):
            raise SerialException("expected a URL %s://..., got %r" % (self.scheme, self._port))
        self.device, self._owned = self.open_device(self._port)
        self.is_open = True

    def close(self):
        if self.is_open and self._owned:
            self.device.close()
        self.is_open = False

    def _reconfigure_port(self):
        """Nothing to configure: the stick ignores serial settings."""

    def _check(self):
        if not self.is_open:
            raise PortNotOpenError()

    @property
    def in_waiting(self):
        self._check()
        return self.device.in_waiting()

    def read(self, size=1):
        self._check()
        return bytes(self.device.read(size, self._timeout))

    def write(self, data):
        self._check()
        self.device.write(bytes(data))
        return len(data)

    def reset_input_buffer(self):
        self._check()
        self.device.reset_input()

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

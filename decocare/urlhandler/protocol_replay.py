"""``replay://PATH.jsonl``: a recorded USB transcript served as the stick's serial port, so any
decocare tool can run against a real recorded session (rules in ``decocare.replay.Replay``)."""

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from decocare.errors import DecocareError
from decocare.replay import Replay


class Serial(SerialBase):
    """pyserial port over ``decocare.replay.Replay``."""

    def open(self):
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        path = self.from_url(self._port)
        try:
            self.replay = Replay(path)
        except DecocareError as exc:
            raise SerialException(str(exc))
        self.is_open = True

    def from_url(self, url):
        """``replay://relative/or/absolute/path.jsonl`` -> the path."""
        if not url.lower().startswith("replay://"):
            raise SerialException("expected a URL like replay://FILE.jsonl, got %r" % url)
        path = url[len("replay://"):].split("?", 1)[0]
        if not path:
            raise SerialException("replay:// needs a transcript path: replay://FILE.jsonl")
        return path

    def _reconfigure_port(self):
        """Baud rate and the rest mean nothing to the stick (spec §2.1)."""

    def close(self):
        self.is_open = False

    @property
    def in_waiting(self):
        if not self.is_open:
            raise PortNotOpenError()
        return sum(len(b) for b in self.replay.outbox)

    def read(self, size=1):
        if not self.is_open:
            raise PortNotOpenError()
        return bytes(self.replay.read(size, self._timeout or 0))

    def write(self, data):
        if not self.is_open:
            raise PortNotOpenError()
        return self.replay.write(bytes(data))

    def reset_input_buffer(self):
        self.replay.outbox[:] = []

    def reset_output_buffer(self):
        pass

    def flush(self):
        pass

"""``replay://PATH.jsonl``: a recorded USB transcript served as the stick's serial port, so any
decocare tool can run against a real recorded session (rules in ``decocare.replay.Replay``)."""
from serial.serialutil import SerialException

from ..errors import DecocareError
from ..replay import Replay
from .device import DevicePort


class Serial(DevicePort):
    """pyserial port over ``decocare.replay.Replay``."""
    scheme = "replay"

    def open_device(self, url):
        path = url[len("replay://"):].split("?", 1)[0]
        if not path:
            raise SerialException("replay:// needs a transcript path: replay://FILE.jsonl")
        try:
            return Replay(path), True
        except DecocareError as exc:
            raise SerialException(str(exc))

"""The serial port under the CareLink stick: any pyserial port string or URL, exact-size reads,
a drain for stale answers, and a hexdump log of every USB operation.

The stick is not a UART (spec protocol.md §2.1): baud rate and flow control are ignored, every
answer is one USB transfer of exactly 64 bytes (or the ReadRadio size).  Reading exactly that
many bytes is what keeps a 15-byte ACK from costing a whole serial timeout (§2.2).
"""
import errno
import logging
import os

import serial

from . import lib
from .errors import PortError

log = logging.getLogger(__name__)

HANDLERS = "decocare.urlhandler"
if HANDLERS not in serial.protocol_handler_packages:
    # pyserial looks up ``<scheme>://`` in these packages: emulator://, replay://
    serial.protocol_handler_packages.append(HANDLERS)

_REASONS = {
    errno.ENOENT: "no such port (is the stick plugged in?)",
    errno.ENODEV: "no such device (was the stick unplugged?)",
    errno.ENXIO: "no such device (was the stick unplugged?)",
    errno.EACCES: "permission denied (add yourself to the dialout group, or use the udev rule)",
    errno.EPERM: "permission denied (add yourself to the dialout group, or use the udev rule)",
    errno.EBUSY: "port is busy (another program has it open)",
    errno.EAGAIN: "port is busy (another program has it open)",
    errno.EIO: "the stick was unplugged (input/output error on the port)",
}
UNPLUGGED = "the stick was unplugged (the port went away)"
# pyserial's words when a port vanishes under an open handle (select says readable, read gets
# nothing; or the device node is gone)
_VANISHED = ("device disconnected", "returned no data", "device reports readiness")


def _port_error(port, exc, opened=False):
    """One line that says what is wrong with the port, without pyserial's repr noise.  On a port
    that was open, a vanished device is named as an unplugged stick."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if opened and (any(word in text for word in _VANISHED) or code in (errno.ENXIO, errno.ENODEV)
                   or (port.startswith("/") and not os.path.exists(port))):
        return PortError("cannot use port %s: %s" % (port, UNPLUGGED))
    if code not in _REASONS:
        for candidate, _ in _REASONS.items():
            if "[Errno %d]" % candidate in text:
                code = candidate
                break
    if code in _REASONS:
        reason = _REASONS[code]
    elif "lock" in text.lower():
        reason = _REASONS[errno.EBUSY]
    else:
        reason = text.splitlines()[0] if text else exc.__class__.__name__
    return PortError("cannot use port %s: %s" % (port, reason))


class Link:
    """One open port.  ``port`` is a pyserial port string/URL, or an already open pyserial-like
    object (anything with ``read(n)``, ``write(b)`` and a ``timeout`` attribute: tests use one).
    ``writes``/``reads`` count USB operations (the benchmark reports them)."""

    def __init__(self, port, timeout=0.5):
        self.timeout = timeout
        self.writes = 0
        self.reads = 0
        if isinstance(port, str):
            self.name = port
            try:
                self.serial = serial.serial_for_url(port, baudrate=9600, timeout=timeout,
                                                    write_timeout=2.0, exclusive=True)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise _port_error(port, exc) from None
        else:
            self.name = getattr(port, "port", None) or repr(port)
            self.serial = port
            self.serial.timeout = timeout

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write(self, data):
        data = bytes(data)
        log.info("usb.write.len: %s\n%s", len(data), lib.hexdump(data))
        self.writes += 1
        try:
            self.serial.write(data)
        except (serial.SerialException, OSError) as exc:
            raise _port_error(self.name, exc, opened=True) from None

    def read(self, size, timeout=None):
        """Up to ``size`` bytes: exactly ``size`` unless the timeout ran out first (then fewer,
        usually ``b""``: the stick has not answered yet, spec §2.3)."""
        wait = self.timeout if timeout is None else timeout
        try:
            if wait != self.serial.timeout:
                self.serial.timeout = wait
            data = self.serial.read(size)   # pyserial waits for all ``size`` bytes or the timeout
            if wait != self.timeout:
                self.serial.timeout = self.timeout
        except (serial.SerialException, OSError) as exc:
            raise _port_error(self.name, exc, opened=True) from None
        self.reads += 1
        log.info("usb.read.len: %s\n%s", len(data), lib.hexdump(data))
        return bytes(data)

    def drain(self, quiet=0.05, limit=64):
        """Read and drop whatever the stick still has to say (stale answers from an earlier run
        or a late reply, spec §2.3 rule 1).  Returns the bytes dropped; bounded by ``limit``."""
        dropped = b""
        for _ in range(limit):
            chunk = self.read(64, timeout=quiet)
            if not chunk:
                break
            dropped += chunk
        if dropped:
            log.info("drained %d stale bytes", len(dropped))
        return dropped

    def close(self):
        try:
            self.serial.close()
        except (serial.SerialException, OSError):
            pass

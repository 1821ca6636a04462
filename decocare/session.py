"""A pump session: run one pump command through the stick and get its whole reply.

Reads get a bounded number of attempts (a silent pump, a corrupt chunk, a late answer are all
worth another try) and then fail with a typed error -- never ``None``, never an endless loop.
Writes are sent exactly once: one TransmitPacket, no retry at any layer.  If anything after
that write is unclear (kind 5, silence, desync, CRC) the outcome is ``Uncertain``: the pump may
have acted, so the only safe next step is a read that checks (spec protocol.md §7.3).

``python -m decocare.session PORT SERIAL`` wakes the pump if needed and prints its model.
"""
import argparse
import logging

from . import cli, frames
from .errors import CommError, CRCError, NoResponse, PortError, Refused, Uncertain

log = logging.getLogger(__name__)

BUTTON_WAKE = 0x55            # TransmitPacket button byte of PowerControl (§4.2)


class Session:
    """Commands for the pump ``serial`` through ``stick``.  ``attempts``: tries per read;
    ``reply_wait``: how long a pump may take to start answering; ``wake_wait``: the same for a
    PowerControl, whose RF wake-up burst takes ~17 s (§4.7); ``stall_wait``: longest gap
    between the chunks of a multi-frame reply."""

    def __init__(self, stick, serial, attempts=3, reply_wait=3.0, wake_wait=25.0, stall_wait=1.5):
        self.stick = stick
        self.serial = serial
        self.attempts = attempts
        self.reply_wait = reply_wait
        self.wake_wait = wake_wait
        self.stall_wait = stall_wait

    def packet(self, command, params=b""):
        return frames.encode_transmit(self.serial, command.opcode, params, frames=command.frames,
                                      retries=command.retries, button=command.button)

    def execute(self, command, params=b"", validate=None, attempts=None):
        """Send ``command`` and return its reply data (``b""`` for an ACK).  ``validate(data)``
        may raise CRCError (pages: CRC16); a NAK raises ``Refused(code)``."""
        packet = self.packet(command, params)
        if command.write:
            return self._write_once(command, packet)
        attempts = attempts or self.attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._read(command, packet, validate)
            except CommError as exc:
                if attempt == attempts:
                    raise type(exc)("%s failed after %d attempt%s: %s"
                                    % (command.name, attempts, "s" * (attempts > 1), exc)) from exc
                log.warning("%s attempt %d/%d: %s", command.name, attempt, attempts, exc)
                self.stick.finish(self.stall_wait * 2)
        raise AssertionError("unreachable")

    def _wait(self, command):
        return self.wake_wait if command.button == BUTTON_WAKE else self.reply_wait

    def _read(self, command, packet, validate):
        self.stick.transmit(packet)
        reply = self.stick.download(self._wait(command), self.stall_wait)
        if reply.kind == frames.KIND_NAK:
            raise Refused("the pump refused %s (NAK code 0x%02x%s)"
                          % (command.name, reply.code or 0, _nak_text(reply.code)), code=reply.code)
        if reply.kind == frames.KIND_TIMEOUT:
            raise NoResponse("the pump did not answer %s (RF timeout after %d stick retries)"
                             % (command.name, reply.retries))
        if reply.kind == frames.KIND_ACK:
            if command.reply_size:
                raise CommError("%s: the pump sent an ACK where %d bytes were expected"
                                % (command.name, command.reply_size))
            return b""
        if len(reply.data) != command.reply_size:
            raise CRCError("%s: got %d bytes, expected %d" % (command.name, len(reply.data),
                                                              command.reply_size))
        if validate:
            validate(reply.data)
        return reply.data

    def _write_once(self, command, packet):
        """Exactly one TransmitPacket.  ACK -> b""; NAK -> Refused; anything else -> Uncertain."""
        self.stick.prepare()                   # before the write: a failure here sent nothing
        try:
            if self.stick.transmit(packet) is None:
                return b""                      # radio off: the stick answers nothing (§3.7)
            reply = self.stick.download(self._wait(command), self.stall_wait)
        except (CommError, PortError) as exc:
            raise Uncertain("%s was sent once and its outcome is unknown (%s); it was NOT sent "
                            "again: check the pump before doing anything else"
                            % (command.name, exc)) from exc
        if reply.kind == frames.KIND_ACK:
            return b""
        if reply.kind == frames.KIND_NAK:
            raise Refused("the pump refused %s (NAK code 0x%02x%s); nothing was changed"
                          % (command.name, reply.code or 0, _nak_text(reply.code)), code=reply.code)
        what = ("no answer from the pump (RF timeout)" if reply.kind == frames.KIND_TIMEOUT
                else "an unexpected %s reply" % frames.KIND_NAMES.get(reply.kind, reply.kind))
        raise Uncertain("%s was sent once and got %s; the pump may have acted; it was NOT sent "
                        "again: check the pump before doing anything else" % (command.name, what))

    def wake(self, probe, power_on, minutes=10):
        """Make sure the pump listens: try ``probe`` once; only if the pump does not answer, send
        ``power_on`` (PowerControl [01, minutes], ~17 s) once and probe again.  Returns the
        probe's reply data."""
        try:
            return self.execute(probe, attempts=1)
        except NoResponse as exc:
            log.info("pump not listening (%s): waking it for %d minutes", exc, minutes)
        self.stick.finish(self.stall_wait)
        try:
            self.execute(power_on, params=bytes([0x01, minutes & 0xFF]), attempts=1)
        except Uncertain:               # PowerControl only powers the radio: probing tells
            log.info("PowerControl got no clear answer; probing whether the pump listens now")
        return self.execute(probe)


_NAK_CODES = {0x08: "command refused / not supported", 0x09: "value out of range",
              0x0C: "bolus in progress", 0x0D: "no such page"}


def _nak_text(code):
    return ": " + _NAK_CODES[code] if code in _NAK_CODES else ""


def add_arguments(parser):
    """``PORT SERIAL`` positionals (or --port/--serial), --minutes, -v: what every pump tool takes."""
    parser.add_argument("port_arg", nargs="?", metavar="PORT", help="serial port or URL (same as --port)")
    parser.add_argument("serial_arg", nargs="?", metavar="SERIAL", type=cli.serial_arg,
                        help="pump serial number, six digits (same as --serial)")
    parser.add_argument("--minutes", type=int, default=10,
                        help="keep the pump radio on this many minutes when waking it (default 10)")
    cli.add_port_options(parser)
    return parser


def parse(parser, argv):
    """Parsed args with ``.port`` and ``.serial`` resolved (usage error when no serial)."""
    args = parser.parse_args(argv)
    cli.setup_logging(args.verbose)
    args.serial = args.serial_arg or args.serial
    if not args.serial:
        parser.error("SERIAL is required (the six digits on the back of the pump)")
    args.port = args.port_arg or args.port
    return args


def main(argv=None):
    args = parse(add_arguments(argparse.ArgumentParser(
        prog="python -m decocare.session",
        description="Open a session with the pump: wake it only if it is not listening "
                    "(PowerControl takes ~17 s), then print its model.")), argv)
    from .tools.pumpcli import open_pump     # the CLI only: the session itself knows no commands
    with open_pump(args.port, args.serial, minutes=args.minutes) as pump:
        print("model: %s" % pump.model)
    return 0


if __name__ == "__main__":
    cli.run(main, prog="decocare.session")

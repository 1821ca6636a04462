"""A pump session: run one pump command through the stick and get its whole reply.

Reads get a bounded number of attempts (a silent pump, a corrupt chunk, a late answer are all
worth another try) and then fail with a typed error -- never ``None``, never an endless loop.
Writes are sent exactly once: one TransmitPacket, no retry at any layer.  If anything after
that write is unclear (kind 5, silence, desync, CRC) the outcome is ``Uncertain``: the pump may
have acted, so the only safe next step is a read that checks (spec protocol.md §7.3).
``writes_sent`` counts the writes whose TransmitPacket went out (a PowerControl, which only
powers the pump's radio, is not one of them): after an interrupt, a caller tells "not sent"
from "uncertain" by it.

The pump's radio window (``radiowindow.RadioWindow``): when a PowerControl switched the radio on and until
when it stays on is kept across tool runs in a small JSON file, so a session wakes at once
when the window is known to have lapsed, and renews it before a command that would outlast it
(the rule and its numbers: docs/protocol-client.md, "The radio window").
"""
import logging

from . import frames
from .errors import CommError, CRCError, NoResponse, PortError, Refused, StickSilent, Uncertain, nak_text
from .radiowindow import CLOSING, LAPSED, UNKNOWN

log = logging.getLogger(__name__)

RENEW_MARGIN = 2.0      # s: renew when a command would end closer than this to the window's end
WRITE_MARGIN = 5.0      # s: a write also needs its verification read inside the same window


class Session:
    """Commands for the pump ``serial`` through ``stick``.  ``attempts``: tries per read;
    ``reply_wait``: how long a pump may take to start answering; ``wake_wait``: the same for a
    PowerControl, whose RF wake-up burst takes ~17 s (§4.7); ``stall_wait``: longest gap
    between the chunks of a multi-frame reply; ``window``: the pump's ``RadioWindow`` (None:
    nothing is remembered, nothing renewed)."""

    def __init__(self, stick, serial, attempts=3, reply_wait=3.0, wake_wait=20.0, stall_wait=1.5,
                 window=None):
        self.stick = stick
        self.serial = serial
        self.attempts = attempts
        self.reply_wait = reply_wait
        self.wake_wait = wake_wait
        self.stall_wait = stall_wait
        self.window = window
        self.writes_sent = 0
        self._power = None          # (PowerControl row, params) once wake() was asked: renewals

    def packet(self, command, params=b""):
        """The TransmitPacket of ``command`` with ``params``: the one encoder every send uses."""
        return frames.encode_transmit(self.serial, command.opcode, params, frames=command.frames,
                                      retries=command.retries, button=command.button)

    def execute(self, command, params=b"", validate=None, attempts=None):
        """Send ``command`` and return its reply data (``b""`` for an ACK).  ``validate(data)``
        may raise CRCError (pages: CRC16); a NAK raises ``Refused(code)``."""
        packet = self.packet(command, params)
        self._keep_window(command, packet)
        if command.write:
            done = self._write_once(command, packet)
            if self.window and command.button == frames.WAKE_BUTTON and bytes(params)[:1] == b"\x00":
                self.window.off()               # PowerControl [00 00]: the radio is off now
            return done
        attempts = attempts or self.attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._read(command, packet, validate)
            except StickSilent:
                raise                           # a frozen stick: another try would only wait
            except CommError as exc:
                if attempt == attempts:
                    raise type(exc)("%s failed after %d attempt%s: %s"
                                    % (command.name, attempts, "s" * (attempts > 1), exc)) from exc
                log.warning("%s attempt %d/%d: %s", command.name, attempt, attempts, exc)
                self.stick.finish(self.stall_wait * 2)
        raise AssertionError("unreachable")

    def _wait(self, command):
        return self.wake_wait if command.button == frames.WAKE_BUTTON else self.reply_wait

    @staticmethod
    def frames_of(command):
        """How many frames the reply of ``command`` has (1 for a single frame or an ACK)."""
        if command.frames == frames.FRAMES_MANY:
            return max(1, command.reply_size // frames.FRAME)
        return 1

    def _download(self, command):
        return self.stick.download(self._wait(command), self.stall_wait, count=self.frames_of(command))

    def _read(self, command, packet, validate):
        self.stick.transmit(packet)
        reply = self._download(command)
        if reply.kind == frames.KIND_NAK:
            raise Refused("the pump refused %s (NAK code 0x%02x%s)"
                          % (command.name, reply.code or 0, _nak(reply.code)), code=reply.code)
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
        if command.button != frames.WAKE_BUTTON:
            self.writes_sent += 1              # from here on the packet may have left
        try:
            if self.stick.transmit(packet) is None:
                return b""                      # radio off: the stick answers nothing (§3.7)
            reply = self._download(command)
        except (CommError, PortError) as exc:
            raise Uncertain("%s was sent once and its outcome is unknown (%s); it was NOT sent "
                            "again: check the pump before doing anything else"
                            % (command.name, exc)) from exc
        if reply.kind == frames.KIND_ACK:
            return b""
        if reply.kind == frames.KIND_NAK:
            raise Refused("the pump refused %s (NAK code 0x%02x%s); nothing was changed"
                          % (command.name, reply.code or 0, _nak(reply.code)), code=reply.code)
        what = ("no answer from the pump (RF timeout)" if reply.kind == frames.KIND_TIMEOUT
                else "an unexpected %s reply" % frames.KIND_NAMES.get(reply.kind, reply.kind))
        raise Uncertain("%s was sent once and got %s; the pump may have acted; it was NOT sent "
                        "again: check the pump before doing anything else" % (command.name, what))

    def arm(self, power_on, power_params):
        """Renew the window before a command that would outlast it, as after ``wake``, without
        a probe now (the caller's first read is the probe: ``wake(..., known_off=True)`` when
        it got no answer)."""
        self._power = (power_on, power_params)

    def remembered_model(self):
        """The model remembered in the pump's radio window for this port, if known open."""
        return self.window.model() if self.window else None

    def remember_model(self, model):
        if self.window:
            self.window.remember_model(model)

    def forget_window(self):
        if self.window:
            self.window.forget()

    def wake(self, probe, power_on, power_params, known_off=False):
        """Make sure the pump listens and return ``probe``'s reply data (the probe is a read the
        caller needs anyway: ReadPumpModel).  Known lapsed radio window: ``power_on`` with
        ``power_params`` (PowerControl [01, minutes], ~17 s) at once, then the probe.
        Otherwise the probe once; only if the pump does not answer, PowerControl once and the
        probe again.  A probe that got a broken answer (CRC, desync) is simply read again: the
        pump did answer, so it is awake.  From here on the session renews the window before a
        command that would outlast it.  ``known_off``: a read just got no answer: wake at once."""
        self._power = (power_on, power_params)
        state = self.window.state()[0] if self.window else UNKNOWN
        if state == LAPSED or known_off:
            log.info("the pump's radio window has lapsed: waking it at once" if not known_off else
                     "the pump did not answer: waking it")
            if known_off:
                self.stick.finish(self.stall_wait)
            self._power_on("wake")
            return self.execute(probe)
        try:
            return self.execute(probe, attempts=1)
        except StickSilent:
            raise
        except NoResponse as exc:
            log.info("pump not listening (%s): waking it", exc)
            if self.window:
                self.window.forget()
        except CommError as exc:
            log.info("the probe's answer was broken (%s): the pump is awake; asking again", exc)
            self.stick.finish(self.stall_wait)
            return self.execute(probe)
        self.stick.finish(self.stall_wait)
        self._power_on("wake")
        return self.execute(probe)

    def _power_on(self, why):
        """PowerControl [01, minutes] once; its ACK starts a new radio window (recorded)."""
        power_on, params = self._power
        try:
            self.execute(power_on, params=params, attempts=1)
        except Uncertain:               # PowerControl only powers the radio: probing tells
            log.info("PowerControl (%s) got no clear answer; probing whether the pump listens now", why)
            if self.window:
                self.window.forget()    # not known: the next command must not wake it again
            return
        if self.window and params[:1] != b"\x00":
            now = self.stick.clock()
            lo, hi = self.stick.arrived or (now, now)
            self.window.woke(params[1] if len(params) > 1 else 10, (now - lo, now - hi))

    def _keep_window(self, command, packet):
        """Before ``command``: if the radio window (as far as known) closes before the command can
        be done -- a write: and read back -- renew it now; known lapsed: wake at once.  Both
        are one PowerControl (~17 s); letting the window lapse mid-command costs that same
        wake-up plus the failed command (docs/protocol-client.md)."""
        pacer = getattr(self.stick, "pacer", None)
        if self.window is None or self._power is None or pacer is None \
                or command.button == frames.WAKE_BUTTON:
            return
        need = pacer.expected(pacer.key(packet), self.frames_of(command)) + RENEW_MARGIN
        if command.write:
            need += WRITE_MARGIN
        state, left = self.window.state(need)
        if state == CLOSING:
            log.info("the radio window closes in %.0f s, before %s would be done: renewing it",
                     left, command.name)
            self._power_on("renew")
        elif state == LAPSED:
            log.info("the pump's radio window has lapsed: waking it before %s", command.name)
            self._power_on("wake")


def _nak(code):
    return ": " + nak_text(code) if code is not None else ""


if __name__ == "__main__":      # python -m decocare.session: the command line is decocare/tools/session.py
    from decocare.tools.registry import launch
    launch("decocare.session")

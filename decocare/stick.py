"""The CareLink USB stick (ComLink2): its commands, reply validation, polling and chunked
downloads, and recovery from late answers -- never by sending a pump command twice.

Rules kept here (spec protocol.md §2.3, §4.4, §4.8):
* one command outstanding at a time; after a 0-byte read keep reading the *same* answer;
* every answer is checked against its request (``01 55`` header, ReadRadio kind, length,
  header and data CRC8) -- a reply that belongs to another request is a ``Desync``;
* after a ``Desync`` or an answer that never came, the next command first re-synchronises
  (drain + ProductInfo); a TransmitPacket is written exactly once by ``transmit``;
* replies are paced by the stick's own ReadStatus (poll every ``poll_interval``), never by
  long fixed sleeps.
* a stick that stops answering on USB altogether (frozen, needs re-plugging) is named as such
  after one silent re-synchronisation, never waited on round after round (``StickSilent``).
"""
import logging
import time
from collections import namedtuple

from . import frames
from .errors import CommError, CRCError, Desync, NoResponse, StickNAK, StickSilent

log = logging.getLogger(__name__)

# A complete pump reply as the stick delivered it: ``kind`` of its last chunk, ``data`` all
# chunks concatenated (a page for multi-frame replies), ``code`` the NAK code for kind 2.
Reply = namedtuple("Reply", "kind data code retries rssi chunks")

STICK_NAK_RETRIES = 2     # a stick NAK (01 66 xx) of a stick-level command: retry it (§4.8)
RESYNC_ROUNDS = 4         # drain + ProductInfo rounds before the stick is declared out of step


class Stick:
    """The stick on a ``Link``.  Timing knobs in seconds: ``poll_interval`` between ReadStatus
    polls while waiting for a reply, ``chunk_interval`` after each chunk of a multi-frame reply
    (frames arrive every ~145 ms, so polling faster only adds empty polls), ``answer_wait``
    how long one USB answer may be late.  ``clock``/``sleep`` are injectable so tests can run
    scripted stick behaviour on a virtual clock."""

    def __init__(self, link, poll_interval=0.05, chunk_interval=0.15, answer_wait=5.0,
                 silent_limit=8.0, clock=time.monotonic, sleep=time.sleep):
        self.link = link
        self.silent_limit = silent_limit
        self.poll_interval = poll_interval
        self.chunk_interval = chunk_interval
        self.answer_wait = answer_wait
        self.clock = clock
        self.sleep = sleep
        self.heard_at = clock()     # when the stick last sent a byte
        self.opened = False         # open() drained stale answers (done before the first command)
        self.dirty = False          # an answer went missing or a foreign one was read
        self.transmits = 0          # TransmitPackets written (tests assert "exactly once")
        self.late_answers = 0       # answers that came after at least one 0-byte read
        self.resyncs = 0

    # --- low level ------------------------------------------------------------------------

    def _answer(self, size, first, name, wait=None):
        """Read one answer of ``size`` bytes starting with byte ``first``; keep reading the same
        answer after 0-byte reads (the stick is slow, not deaf) until ``wait`` runs out."""
        limit = self.answer_wait if wait is None else wait
        deadline = self.clock() + limit
        data = b""
        empty = 0
        while len(data) < size:
            chunk = self.link.read(size - len(data))
            if chunk:
                self.heard_at = self.clock()
                data += chunk
                if data[0] != first:
                    self.dirty = True
                    raise Desync("%s: the stick answered %s, which belongs to another request"
                                 % (name, data[:8].hex()))
                continue
            empty += 1
            if self.clock() >= deadline:
                self.dirty = True
                if data:
                    raise CRCError("%s: answer cut short after %d of %d bytes" % (name, len(data), size))
                raise NoResponse("%s: the stick did not answer within %.1f s" % (name, limit))
        if empty:
            self.late_answers += 1
            log.info("%s answered late, after %d empty reads", name, empty)
        return data

    def prepare(self):
        """Before a command: stale answers drained once, and back in step after a desync."""
        if not self.opened:
            self.open()
        elif self.dirty:
            self.resync()

    def _exchange(self, request, size, first, name, wait=None):
        self.prepare()
        self.link.write(request)
        return self._answer(size, first, name, wait)

    def command(self, name, param=0, wait=None):
        """A 64-byte stick command (not TransmitPacket/ReadRadio), ``01 55`` checked; a stick NAK
        is retried after a short pause since stick commands change nothing."""
        request = frames.stick_command(name, param)
        for attempt in range(STICK_NAK_RETRIES + 1):
            reply = self._exchange(request, 64, 0x01, name, wait)
            try:
                return frames.check_ack(reply, name)
            except StickNAK:
                if attempt == STICK_NAK_RETRIES:
                    raise
                log.warning("%s: stick NAK %s, retrying", name, reply[:3].hex())
                self.sleep(0.1)
            except Desync:
                self.dirty = True
                raise
        raise AssertionError("unreachable")

    def resync(self):
        """Drain stale answers and ask ProductInfo until the genuine answer comes back (§2.3).
        A stick that has said nothing at all for ``silent_limit`` seconds when a round gets no
        answer has stopped answering: StickSilent at once (a frozen stick needs re-plugging; more
        rounds would only wait)."""
        self.resyncs += 1
        for _ in range(RESYNC_ROUNDS):
            if self.link.drain():
                self.heard_at = self.clock()
            try:
                self.link.write(frames.stick_command("ProductInfo"))
                info = frames.genuine_product_info(self._answer(64, 0x01, "ProductInfo"))
                # A late answer can look like ProductInfo (its tail is the shared buffer, §3.1):
                # a status right after it must then look like a status, or we are still behind.
                self.link.write(frames.stick_command("ReadStatus"))
                frames.genuine_status(self._answer(64, 0x01, "ReadStatus"))
            except NoResponse as exc:
                if self.clock() - self.heard_at > self.silent_limit:
                    raise StickSilent("the stick stopped answering on USB (%s; nothing from it for "
                                      "%.0f s): unplug it and plug it back in"
                                      % (exc, self.clock() - self.heard_at)) from None
                log.warning("re-sync: %s", exc)
                continue
            except (Desync, StickNAK, CRCError) as exc:
                log.warning("re-sync: %s", exc)
                continue
            self.dirty = False
            return info
        raise Desync("the stick stays out of step after draining (unplug it and plug it back in)")

    # --- stick commands ---------------------------------------------------------------------

    def open(self):
        """Drop stale answers from earlier programs, then check the stick is a ComLink II."""
        self.opened = True
        self.link.drain()
        self.dirty = False
        try:
            return frames.genuine_product_info(self.command("ProductInfo"))
        except Desync:
            return self.resync()

    def signal_strength(self):
        return frames.parse_signal_strength(self.command("SignalStrength"))

    def interface_stats(self, which="radio"):
        return frames.parse_interface_stats(
            self.command("InterfaceStats", {"radio": 0, "usb": 1}[which]))

    def read_status(self, wait=None):
        try:
            return frames.genuine_status(self.command("ReadStatus", wait=wait))
        except Desync:
            self.dirty = True
            raise

    def transmit(self, packet):
        """Write one TransmitPacket and read its USB answer (``01 55 00`` = accepted; None for a
        packet the stick never answers).  Never re-written here: whatever goes wrong after the
        write is raised to the session."""
        self.prepare()
        self.transmits += 1
        self.link.write(packet)
        if not frames.answered(packet):
            return None
        return frames.check_ack(self._answer(64, 0x01, "TransmitPacket"), "TransmitPacket")

    def read_radio(self, size):
        """ReadRadio(size): exactly ``size`` bytes, both CRC8s and the length checked."""
        data = self._exchange(frames.encode_read_radio(size), size, 0x02, "ReadRadio")
        reply = frames.parse_radio_reply(data)
        if frames.RADIO_HEADER + reply.length + 1 != size:
            raise CRCError("ReadRadio: %d-byte reply declares %d data bytes" % (size, reply.length))
        if not reply.header_crc_ok:
            raise CRCError("ReadRadio: header CRC8 mismatch in %s" % data[:13].hex())
        if not reply.data_crc_ok:
            raise CRCError("ReadRadio: data CRC8 mismatch (%d data bytes)" % reply.length)
        if reply.kind not in frames.KIND_NAMES:
            raise CRCError("ReadRadio: unknown reply kind %d" % reply.kind)
        return reply

    # --- pump replies ------------------------------------------------------------------------

    def download(self, first_wait=3.0, stall_wait=1.5):
        """Poll ReadStatus and ReadRadio each buffered chunk until the end-of-data flag.

        ``first_wait``: how long the pump may take to start answering (a PowerControl wake-up
        needs ~17 s, during which the stick also holds back its USB answers); ``stall_wait``:
        longest gap between chunks.  Kind 5 (RF timeout) is returned, not raised."""
        chunks = []
        deadline = self.clock() + first_wait
        just_read = False
        while True:
            status = self.read_status(wait=max(self.answer_wait, first_wait) if not chunks else None)
            size = frames.ready_size(status)
            if size:
                reply = self.read_radio(size)
                if chunks and reply.kind != frames.KIND_CHUNK:
                    raise CommError("reply kind %d after %d chunks of a multi-frame reply"
                                    % (reply.kind, len(chunks)))
                chunks.append(reply)
                if reply.eod or reply.kind != frames.KIND_CHUNK:
                    return _reply(chunks)
                deadline = self.clock() + stall_wait
                just_read = True            # ask once more at once: more may be buffered
                continue
            if self.clock() >= deadline:
                got = sum(c.length for c in chunks)
                if chunks:
                    raise NoResponse("the pump stopped sending after %d bytes (no end of data)" % got)
                raise NoResponse("no reply from the pump within %.1f s" % first_wait)
            # right after a chunk the next frame is ~145 ms away (§4.6): no point polling sooner
            self.sleep(self.chunk_interval if just_read else self.poll_interval)
            just_read = False

    def finish(self, wait=3.0):
        """After a failed read: let an abandoned multi-frame transfer run out (discarding what
        comes) so the next command does not meet a busy stick (§4.6 stall, §4.8)."""
        deadline = self.clock() + wait
        idle = 0
        while self.clock() < deadline and idle < 3:
            try:
                status = self.read_status(wait=min(self.answer_wait, wait))
                size = frames.ready_size(status)
                if size:
                    idle = 0
                    if self.read_radio(size).eod:
                        return
                    continue
                idle = idle + 1 if not status.flags else 0
            except CommError as exc:
                log.info("finish: %s", exc)
                self.dirty = True
                return
            self.sleep(self.poll_interval)


def _reply(chunks):
    last = chunks[-1]
    data = b"".join(c.data for c in chunks)
    code = data[0] if last.kind == frames.KIND_NAK and data else None
    return Reply(kind=last.kind, data=data, code=code, retries=max(c.retries for c in chunks),
                 rssi=last.rssi, chunks=len(chunks))


if __name__ == "__main__":      # python -m decocare.stick: the command line is decocare/tools/stick.py
    from decocare.tools.registry import launch
    launch("decocare.stick")

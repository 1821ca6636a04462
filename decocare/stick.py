"""The CareLink USB stick (ComLink2): its commands, reply validation, polling and chunked
downloads, and recovery from late answers -- never by sending a pump command twice.

Rules kept here (spec protocol.md §2.3, §4.4, §4.8):
* one command outstanding at a time; after a 0-byte read keep reading the *same* answer;
* every answer is checked against its request (``01 55`` header, ReadRadio kind, length,
  header and data CRC8) -- a reply that belongs to another request is a ``Desync``;
* after a ``Desync`` or an answer that never came, the next command first re-synchronises
  (drain + ProductInfo); a TransmitPacket is written exactly once by ``transmit``;
* replies are paced by what the stick shows (``Pacer``): after a TransmitPacket the first poll
  goes out when the reply is expected, the frame pace is learned from the frames' arrivals, and
  each chunk (one to three frames) is read as soon as it is buffered -- never long fixed sleeps.
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

CHUNK = 3                 # frames per ReadRadio at most: the vendor never let more accumulate and
                          # large reads are where data CRCs failed (§4.5)
TIGHT = 0.002             # a bracket this narrow (s; 0.2 % of it for long replies) is polled at its
                          # end; a wider one is halved by one early poll first
BACKOFF = 0.002           # an answer later than expected: poll again after 2, 4, 8 ... ms
EARLY = 0.005             # s: the first look at a bracket nothing has tested from below
MAX_GAP = 0.75            # s: never longer between two polls of one reply (3 frames at any pace seen)
OPEN_QUIET = 0.01         # s: at open, stale answers already queued come at once (USB: < 1 ms); a
                          # late one the drain cannot wait for is caught by the genuine-answer checks
INF = float("inf")

# By when the client expects a reply before it has seen one, in seconds after the TransmitPacket
# (real hardware, spec §8 and the fit in docs/emulator.md, plus a little), per (wake-up,
# multi-frame, with arguments): (lo, hi].  The lower ends are 0 on purpose -- nothing is
# assumed about how early an answer can come (the emulator's fast timing answers in
# milliseconds) -- so the first replies halve these brackets down to what the stick shows; a
# stick slower than the upper end is polled for again after 2, 4, 8 ... ms.
FIRST_PRIOR = {
    (False, False, False): (0.0, 0.139),    # single-frame reply (fit 136.7 ms, all samples < 137.8)
    (False, False, True): (0.0, 0.285),     # ACK of a write: two RF exchanges, like a page's frame 1
    (False, True, True): (0.0, 0.285),      # a page's first frame (fit 274.7 ms, vendor 269.3)
    (False, True, False): (0.0, 0.150),     # basal profiles' first frame (fit 147.9 ms)
    (True, False, True): (0.0, 0.05),       # PowerControl: polled at once, never learned -- the
}                                           # stick holds its answers back during the ~17 s burst
PACE_PRIOR = {True: (0.0, 0.1395), False: (0.0, 0.170)}  # frame pace: pages (137.7 ms), profiles (167.7)


class Bracket:
    """Where an event falls, as learned from polls: ``lo < t <= hi``.  Each occurrence seen in
    (lo, hi] narrows it; one outside it (the timing moved, or jitters) widens it to cover both."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def learn(self, lo, hi):
        if not (hi < INF and lo < hi):
            return
        nlo, nhi = max(self.lo, lo), min(self.hi, hi)
        if nlo < nhi:
            self.lo, self.hi = nlo, nhi
        else:
            self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)

    def __repr__(self):
        return "(%.4f, %.4f]" % (self.lo, self.hi)


class Pacer:
    """What the client has learned of the radio's timing, per kind of exchange: when the first
    reply data is buffered after a TransmitPacket, and the pace of a multi-frame reply's frames."""

    def __init__(self):
        self.first = {key: Bracket(*b) for key, b in FIRST_PRIOR.items()}
        self.pace = {key: Bracket(*b) for key, b in PACE_PRIOR.items()}
        self.clockless = False      # the last multi-frame reply fitted no pace (a recording)

    @staticmethod
    def key(packet):
        """(wake-up, multi-frame, with arguments) of a TransmitPacket."""
        packet = bytes(packet)
        params = len(packet) >= frames.TRANSMIT_HEAD and frames.transmit_length(packet) > 16
        multi = len(packet) > 11 and packet[11] == frames.FRAMES_MANY
        return (len(packet) > 9 and packet[9] == frames.WAKE_BUTTON, multi, params)

    def first_bracket(self, key):
        if key not in self.first:
            self.first[key] = Bracket(*FIRST_PRIOR[(False, key[1], key[2])])
        return self.first[key]

    def expected(self, key, count=1):
        """Seconds a reply of ``count`` frames is expected to take at most (the latest estimate)."""
        first = self.first_bracket(key).hi
        return first + max(0, count - 1) * self.pace[key[2]].hi


class Arrivals:
    """One reply being received: per frame (1-based) the interval (lo, hi] of its arrival after
    the TransmitPacket, from the polls so far, and the predictions drawn from it."""

    def __init__(self, pacer, key, count):
        self.pacer, self.key, self.count = pacer, key, count
        self.lo, self.hi = {}, {}
        self.believe = True         # the learned first-frame time still agrees with this reply

    def saw(self, seen, before, after):
        """A poll written between ``before`` and ``after`` (seconds after the TransmitPacket)
        showed ``seen`` frames arrived in all."""
        for k in range(1, seen + 1):
            if after < self.hi.get(k, INF):
                self.hi[k] = after
        for k in range(seen + 1, max([seen + 1, self.count or 0] + list(self.lo) + list(self.hi)) + 1):
            if before > self.lo.get(k, 0.0):
                self.lo[k] = before

    def _observed(self):
        return sorted(set(self.lo) | set(self.hi))

    def pace_seen(self):
        """(lo, hi] of the frame pace that this reply's own arrivals allow."""
        lo, hi = 0.0, INF
        ks = self._observed()
        for i in ks:
            for j in ks:
                if j <= i:
                    continue
                if self.hi.get(i, INF) < INF and self.lo.get(j, 0.0) > 0:
                    lo = max(lo, (self.lo[j] - self.hi[i]) / (j - i))
                if self.hi.get(j, INF) < INF:
                    hi = min(hi, (self.hi[j] - self.lo.get(i, 0.0)) / (j - i))
        return lo, hi

    def pace(self):
        """(lo, hi, agreed): the pace bracket to predict with -- what was learned before, narrowed
        by this reply -- and whether the two agree (if not: this reply's own, maybe open-ended)."""
        prior = self.pacer.pace[self.key[2]]
        lo, hi = self.pace_seen()
        nlo, nhi = max(lo, prior.lo), min(hi, prior.hi)
        if nlo < nhi:
            return nlo, nhi, True
        return lo, hi, False

    def predict(self, k):
        """(lo, hi, sure): the interval of frame ``k``'s arrival from this reply's own arrivals
        at the learned pace and from where the first frame is expected (this reply's arrivals
        win when the two disagree); ``sure`` is False when the stick's answers fit no pace at
        all (a recording played back has no clock): then the caller just polls, at once after
        a chunk and backing off while nothing comes.  ``hi`` is INF (or not above ``lo``) when
        the frame is due already by what this reply showed."""
        plo, phi, agreed = self.pace()
        agreed = agreed and not self.pacer.clockless
        first = self.pacer.first_bracket(self.key)
        olo, ohi = 0.0, INF
        for i in self._observed():
            d = k - i
            ilo, ihi = self.lo.get(i, 0.0), self.hi.get(i, INF)
            if d >= 0:
                olo, ohi = max(olo, ilo + d * plo), min(ohi, ihi + d * phi)
            else:
                olo, ohi = max(olo, ilo + d * phi), min(ohi, ihi + d * plo)
        if self.believe and agreed:
            blo, bhi = first.lo + (k - 1) * plo, first.hi + (k - 1) * phi
            lo, hi = max(olo, blo), min(ohi, bhi)
            if lo < hi:
                return lo, hi, True
            self.believe = False    # this reply is later (or earlier) than learned: follow it
        return olo, max(ohi, olo), agreed

    def learn(self):
        """The reply came whole as expected: what it showed becomes the pacer's knowledge."""
        if not self.hi or self.key[0]:
            return
        first = self.pacer.first_bracket(self.key)
        if len(self._observed()) == 1 or self.count == 1:
            first.learn(self.lo.get(1, 0.0), self.hi.get(1, INF))
            return
        seen = self.pace_seen()
        self.pacer.pace[self.key[2]].learn(*seen)
        plo, phi, _ = self.pace()
        lo = max([0.0] + [self.lo[k] - (k - 1) * phi for k in self.lo])
        hi = min([INF] + [self.hi[k] - (k - 1) * plo for k in self.hi])
        first.learn(lo, hi)


def boundaries(count):
    """After which frames to read a chunk: every CHUNK frames and the last frame alone (a one-frame
    ReadRadio is the fastest, and only the last one's timing counts): 16 -> 3 6 9 12 15 16."""
    if not count or count <= CHUNK:
        return [count or CHUNK]
    return list(range(CHUNK, count, CHUNK)) + [count]


class Stick:
    """The stick on a ``Link``.  Timing knobs in seconds: ``poll_interval`` the longest gap
    between ReadStatus polls while an answer is later than expected (the polls back off from
    2 ms up to it); ``chunk_interval`` the same between the chunks of a reply whose length is
    unknown; ``answer_wait`` how long one USB answer may be late.  ``pacer`` holds what was
    learned of the radio's timing (share one between sticks to keep it).  ``clock``/``sleep``
    are injectable so tests can run scripted stick behaviour on a virtual clock."""

    def __init__(self, link, poll_interval=0.05, chunk_interval=0.15, answer_wait=5.0,
                 silent_limit=8.0, clock=time.monotonic, sleep=time.sleep, pacer=None):
        self.link = link
        self.silent_limit = silent_limit
        self.poll_interval = poll_interval
        self.chunk_interval = chunk_interval
        self.answer_wait = answer_wait
        self.clock = clock
        self.sleep = sleep
        self.pacer = pacer or Pacer()
        self.heard_at = clock()     # when the stick last sent a byte
        self.opened = False         # open() drained stale answers (done before the first command)
        self.dirty = False          # an answer went missing or a foreign one was read
        self.transmits = 0          # TransmitPackets written (tests assert "exactly once")
        self.late_answers = 0       # answers that came after at least one 0-byte read
        self.resyncs = 0
        self.wrote = (0.0, 0.0)     # clock just before and just after the last command's write
        self.sent = None            # (before, after, pacer key) of the last TransmitPacket
        self.arrived = None         # (lo, hi] clock times the last reply's first data came in

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
        self._write(request)
        return self._answer(size, first, name, wait)

    def _write(self, request):
        before = self.clock()
        self.link.write(request)
        self.wrote = (before, self.clock())

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
        self.link.drain(quiet=OPEN_QUIET)
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
        self._write(packet)
        self.sent = self.wrote + (Pacer.key(packet),)
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

    def download(self, first_wait=3.0, stall_wait=1.5, count=None):
        """Poll ReadStatus and ReadRadio each buffered chunk until the end-of-data flag.

        ``first_wait``: how long the pump may take to start answering (a PowerControl wake-up
        needs ~17 s, during which the stick also holds back its USB answers); ``stall_wait``:
        longest gap between chunks; ``count``: the frames the reply should have (1 for a
        single-frame reply or an ACK, 16 for a page), when known.  Kind 5 (RF timeout) is
        returned, not raised.

        Pacing (docs/protocol-client.md): each poll goes out when the next chunk is expected --
        the first one when the reply is due after the TransmitPacket, the others from this
        reply's own arrivals at the pace learned so far -- and reads one to three frames, the
        last frame alone; a wide expectation is halved by one early poll (it costs no time: the
        poll at the expectation's end still follows), an answer later than expected is polled
        for again after 2, 4, 8 ... ms up to ``poll_interval``."""
        start, start_end, key = self.sent or (self.clock(), self.clock(), (False, count != 1, False))
        if count is None and not key[1]:
            count = 1
        seen = Arrivals(self.pacer, key, count)
        plan = boundaries(count)
        chunks = []
        consumed = 0
        deadline = start + first_wait
        backoff = 0.0
        last_poll = None
        halved = set()                  # goals whose bracket an early poll has already halved
        waited = set()                  # goals for which a part already buffered was left for later
        self.arrived = None
        while True:
            now = self.clock()
            target, late = self._next_poll(seen, plan, consumed, start, now, last_poll, backoff, halved)
            if target > now:
                self.sleep(max(0.0, min(target, deadline) - now))
            status = self.read_status(wait=max(self.answer_wait, first_wait) if not chunks else None)
            last_poll = self.wrote[0]
            size = frames.ready_size(status)
            buffered = max(1, (size - frames.RADIO_HEADER - 1) // frames.FRAME) if size else 0
            seen.saw(consumed + buffered, self.wrote[0] - start_end, self.wrote[1] - start)
            goal = next((b for b in plan if b > consumed), None)
            if size and count and goal and consumed + buffered < goal <= count and goal not in waited \
                    and size > frames.RADIO_HEADER + 1 + frames.FRAME // 2 and self.clock() < deadline:
                waited.add(goal)        # more of this chunk is due: read it whole at the next poll
                continue
            if size:
                backoff = 0.0
                if self.arrived is None:
                    self.arrived = (last_poll, self.wrote[1])
                reply = self.read_radio(size)
                if chunks and reply.kind != frames.KIND_CHUNK:
                    raise CommError("reply kind %d after %d chunks of a multi-frame reply"
                                    % (reply.kind, len(chunks)))
                chunks.append(reply)
                consumed += max(1, reply.length // frames.FRAME) if reply.kind == frames.KIND_CHUNK else 1
                if reply.eod or reply.kind != frames.KIND_CHUNK:
                    if reply.kind in (frames.KIND_ACK, frames.KIND_FRAME, frames.KIND_CHUNK) \
                            and (count is None or consumed == count):
                        if reply.kind == frames.KIND_CHUNK and consumed > 1:
                            self.pacer.clockless = not seen.pace()[2]
                        seen.learn()
                    return _reply(chunks)
                deadline = self.clock() + stall_wait
                continue
            if late:                        # it should have been there: poll again soon, then less often
                backoff = min(backoff * 2, self._cap(count)) if backoff else BACKOFF
            if self.clock() >= deadline:
                got = sum(c.length for c in chunks)
                if chunks:
                    raise NoResponse("the pump stopped sending after %d bytes (no end of data)" % got)
                raise NoResponse("no reply from the pump within %.1f s" % first_wait)

    def _cap(self, count):
        return self.poll_interval if count is not None else max(self.poll_interval, self.chunk_interval)

    def _next_poll(self, seen, plan, consumed, start, now, last_poll, backoff, halved):
        """(when to poll next, whether the chunk is already overdue).  The chunk to wait for ends
        at the next planned boundary after what has been read; the first and the last chunk are
        aimed at precisely (a wide bracket is halved by one early poll), the others at its end."""
        goal = next((b for b in plan if b > consumed), None)
        if goal is None:                    # more frames than planned (count unknown): 3 more
            goal = consumed + CHUNK
        lo, hi, sure = seen.predict(goal)
        precise = consumed == 0 or goal == plan[-1]
        if not sure:    # the answers fit no pace (a recording has no clock): ask again at once
            return (start if last_poll is None else last_poll + backoff), True   # then back off
        if hi == INF or hi <= lo:           # due already by what this reply showed
            when = start + lo
        elif precise and hi - lo > max(TIGHT, hi * TIGHT) and goal not in halved:
            halved.add(goal)        # never tested from below: look early once, else halve it
            when = start + (EARLY if lo <= 0 and hi > 4 * EARLY else (lo + hi) / 2)
        else:
            when = start + hi
        if last_poll is not None and when <= last_poll:
            # expected by now but not there (or the bracket just said so): back off
            return max(now, last_poll + max(backoff, BACKOFF)), True
        return min(when, (start if last_poll is None else last_poll) + MAX_GAP), False

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

"""The emulated CareLink USB stick (ComLink II), byte for byte (spec protocol.md §3, §4, §9).

It keeps what the real stick keeps: one shared 64-byte reply buffer of which each command
overwrites only its own leading bytes (the rest are stale tails, §3.1), the radio reply being
received (frames arriving at RF pace, exposed through ReadStatus flags/sizes and drained by
ReadRadio, §4.4–4.6), radio and USB counters (§3.4) and a queue of USB answers released at
their time, in order, late when the radio is busy with a wake-up burst (§2.3, §4.7).
Frames are built with ``decocare.frames``; the pump behind the radio is ``pump.Pump``.
"""
import threading
import time

from .. import commands, frames
from .. import frames as frames_mod
from ..frames import KIND_ACK, KIND_CHUNK, KIND_FRAME, KIND_NAK, KIND_TIMEOUT

POWER_CONTROL = frames.POWER_CONTROL


class Timing:
    """Latencies in seconds.  ``real`` is fitted to the real captures (docs/emulator.md, "Timing";
    ``benchmarks/fit_timing.py`` recomputes it): after a TransmitPacket a single-frame reply is
    buffered at ``reply``; a page's first frame at ``first_frame``, then one frame per ``frame``
    (16th at 2.34 s); a multi-frame reply without arguments (basal profiles) starts at
    ``profile_first``, one frame per ``profile_frame``; a write's ACK at ``write``; each RF try
    that goes unanswered takes ``rf_try`` (kind 5 after 1 + retries of them); USB answers come
    after ``usb``, a ReadRadio after ``radio_read[k - 1]`` for k frames.  ``fast`` keeps every
    ordering and state transition but shrinks the waits for tests (wake-up 50 ms)."""

    REAL = dict(usb=0.0002, radio_read=(0.0017, 0.0029, 0.0121), reply=0.1367, write=0.2747,
                first_frame=0.2747, frame=0.1377, profile_first=0.1479, profile_frame=0.1677,
                wake=17.0, rf_try=0.1352, bolus_per_unit=40.0, late=1.0)
    FAST = dict(usb=0.0, radio_read=(0.0, 0.0, 0.0), reply=0.002, write=0.003, first_frame=0.003,
                frame=0.0008, profile_first=0.002, profile_frame=0.0008, wake=0.05, rf_try=0.003,
                bolus_per_unit=0.4, late=0.6)

    def __init__(self, name="fast"):
        if name not in ("fast", "real"):
            raise ValueError("timing must be 'fast' or 'real', got %r" % (name,))
        self.name = name
        self.__dict__.update(self.REAL if name == "real" else self.FAST)

    def radio_latency(self, size):
        """How long a ReadRadio of ``size`` bytes takes to come back (vendor USB turnaround)."""
        frames = max(1, (size - frames_mod.RADIO_HEADER - 1 + frames_mod.FRAME - 1) // frames_mod.FRAME)
        table = self.radio_read
        return table[min(frames, len(table)) - 1] + max(0, frames - len(table)) * (table[-1] - table[-2])

    def floor(self, frames=1, params=False):
        """The modelled shortest time from a TransmitPacket's write to its reply read whole: the
        reply's arrival (``frames`` > 1: its last frame's), then one ReadStatus and one ReadRadio
        of a one-frame chunk.  ``params``: the command carries arguments (two RF exchanges)."""
        if frames <= 1:
            arrival = self.write if params else self.reply
        elif params:
            arrival = self.first_frame + (frames - 1) * self.frame
        else:
            arrival = self.profile_first + (frames - 1) * self.profile_frame
        return arrival + self.usb + self.radio_latency(frames_mod.RADIO_HEADER + 1 + frames_mod.FRAME)


class Clock:
    """Monotonic seconds that tests can move forward (``advance``) to end RF windows,
    boluses and temp basals without waiting."""

    def __init__(self):
        self.skew = 0.0

    def now(self):
        return time.monotonic() + self.skew

    def advance(self, seconds):
        self.skew += seconds


class RadioTask:
    """The pump reply the stick is receiving: chunks of (arrival time, data bytes) of one kind."""

    def __init__(self, kind, chunks, retries=0, rssi=0xDD):
        self.kind, self.chunks, self.retries, self.rssi = kind, chunks, retries, rssi
        self.consumed = 0
        self.stalled = False

    def arrived(self, now):
        return [c for c in self.chunks[self.consumed:] if c[0] <= now]

    def receiving(self, now):
        return any(t > now for t, _ in self.chunks[self.consumed:])


class Stick:
    """Parse host bytes into stick commands, answer each one, drive the pump over "radio"."""

    def __init__(self, pump, faults, timing, clock, ledger, stick_serial="0c1700", region=0x00):
        self.pump, self.faults, self.timing, self.clock, self.ledger = pump, faults, timing, clock, ledger
        self.stick_serial, self.region = stick_serial, region
        self.buf = bytearray(64)
        self.cond = threading.Condition()
        self.stream = bytearray()          # answers the host can read now
        self.outbox = []                   # [release time, bytes, held-until-next-write]
        self.pending = bytearray()         # host bytes not yet forming a whole command
        self.task = None
        self.busy_until = 0.0              # stick silent on USB until then (wake-up burst)
        self.pump_busy = False             # after a stalled transfer: next command gets kind 5
        self.radio = dict(crc_errors=0, sequence_errors=0, naks=0, timeouts=0, received=0, transmitted=0)
        self.usb = dict(received=0, transmitted=0)
        self.signal_rng = faults.rng

    # --- USB side -------------------------------------------------------------------------

    def write(self, data):
        """Bytes written by the host (one or more whole or partial stick commands)."""
        with self.cond:
            now = self.clock.now()
            for item in self.outbox:            # a late answer comes out before the next one
                if item[2]:
                    item[0], item[2] = now, False
            self.pending += bytes(data)
            while True:
                cmd = self._next_command()
                if cmd is None:
                    break
                self._handle(cmd, now)
            self.cond.notify_all()

    def read(self, size, timeout=None):
        """Like a serial read: up to ``size`` bytes, waiting at most ``timeout`` seconds."""
        deadline = None if timeout is None else self.clock.now() + timeout
        with self.cond:
            while True:
                now = self.clock.now()
                self._release(now)
                if len(self.stream) >= size or (deadline is not None and now >= deadline):
                    break
                waits = [t - now for t, _, _ in self.outbox]
                if deadline is not None:
                    waits.append(deadline - now)
                self.cond.wait(max(0.0005, min(waits)) if waits else None)
            out = bytes(self.stream[:size])
            del self.stream[:size]
            return out

    def take_ready(self):
        """Every answer byte that is due now (the pty server pushes these to the port)."""
        with self.cond:
            self._release(self.clock.now())
            out = bytes(self.stream)
            self.stream.clear()
            return out

    def next_release(self):
        """Seconds until the next queued answer is due (None when nothing is queued)."""
        with self.cond:
            if not self.outbox:
                return None
            return max(0.0, min(t for t, _, _ in self.outbox) - self.clock.now())

    def in_waiting(self):
        with self.cond:
            self._release(self.clock.now())
            return len(self.stream)

    def reset_input(self):
        with self.cond:
            self._release(self.clock.now())
            self.stream.clear()

    def _release(self, now):
        while self.outbox and self.outbox[0][0] <= now:
            self.stream += self.outbox.pop(0)[1]

    def _answer(self, data, now, latency):
        """Queue one USB answer: in order, never before the stick is free, maybe late (fault)."""
        self.usb["transmitted"] += 1
        when = max(now + latency, self.busy_until, self.outbox[-1][0] if self.outbox else 0)
        held = self.faults.fire("late_usb")
        if held:
            when += self.timing.late
        self.outbox.append([when, bytes(data), held])

    def _next_command(self):
        """Split the host byte stream into commands (2-3 bytes, ReadRadio 5, TransmitPacket 16+N);
        stray zero bytes between commands are the padding of 3-byte forms (``03 00 00``)."""
        p = self.pending
        while p and p[0] == 0x00:
            del p[0]
        if not p:
            return None
        op = p[0]
        if op == frames.TRANSMIT_PACKET:
            if len(p) < frames.TRANSMIT_HEAD:
                return None
            size = frames.transmit_length(p)
        elif op == frames.READ_RADIO:
            size = 5
        else:
            size = 2
        if len(p) < size:
            return None
        cmd = bytes(p[:size])
        del p[:size]
        return cmd

    # --- stick commands ----------------------------------------------------------------------

    def _own(self, data):
        self.buf[:len(data)] = data[:64]

    def _handle(self, cmd, now):
        """Dispatch on the stick op table (``frames.STICK_OPS``): each op's answer, cut to the
        bytes the table says it owns, goes into the shared buffer."""
        self.usb["received"] += 1
        op = frames.STICK_OP_BY_CODE.get(cmd[0])
        param = cmd[1] if len(cmd) > 1 else 0
        if op is None or param not in op.params:
            self._own(bytes([0x01, frames.NAK, 0x03]))   # unknown stick command (approximated)
            return self._answer(self.buf, now, self.timing.usb)
        answer = getattr(self, "_op_" + op.name)(cmd, now)
        if answer is not None:
            self._own(frames.owned(op.code, param, answer))
            self._answer(self.buf, now, self.timing.usb)

    def _op_ProductInfo(self, cmd, now):
        return frames.encode_product_info(self.stick_serial, self.region)

    def _op_SignalStrength(self, cmd, now):
        return bytes([0x01, frames.ACK, 0x00, self.signal_rng.randint(0xB9, 0xC8)])

    def _op_InterfaceStats(self, cmd, now):
        if cmd[1] == 0:
            r = self.radio
            extra = b"".join(v.to_bytes(2, "big") for v in (
                0, r["naks"], r["received"] & 0xFFFF, r["transmitted"] & 0xFFFF, r["timeouts"]))
            return frames.encode_interface_stats(extra=extra, **r)
        u = self.usb
        extra = b"".join((v & 0xFFFF).to_bytes(2, "big") for v in (
            u["received"] + 0x3C, u["received"] + 0x291, u["transmitted"], 0x0400, 0x0005))
        return frames.encode_interface_stats(received=u["received"], transmitted=u["transmitted"],
                                             extra=extra)

    def _op_ReadStatus(self, cmd, now):
        return self._status(now)

    def _op_ReadRadio(self, cmd, now):
        self._read_radio(cmd, now)          # answers (or not) by itself: exactly the size asked

    def _op_TransmitPacket(self, cmd, now):
        self._transmit(cmd, now)            # answers (or not) by itself

    def _status(self, now):
        flags, size = 0, 0
        task = self.task
        if task is not None:
            arrived = task.arrived(now)
            if arrived:
                flags |= frames.STATUS_READY
                size = frames.RADIO_HEADER + 1 + sum(len(d) for _, d in arrived)
            if task.receiving(now):
                flags |= frames.STATUS_RECEIVING
        return frames.encode_status(flags, size)

    def _read_radio(self, cmd, now):
        try:
            size = frames.parse_read_radio(cmd)
        except ValueError:
            self._own(bytes([0x01, frames.NAK, 0x03]))
            return self._answer(self.buf, now, self.timing.usb)
        if size == 0:
            return                      # never answered (§2.2): the host's read just times out
        task = self.task
        arrived = task.arrived(now) if task else []
        if arrived and task.kind == KIND_CHUNK:    # whole frames that fit the requested size
            arrived = arrived[:max(1, (size - frames.RADIO_HEADER - 1) // frames.FRAME)]
        if arrived:
            task.consumed += len(arrived)
            data = b"".join(d for _, d in arrived)
            eod = task.consumed == len(task.chunks) and not task.stalled
            reply = frames.encode_radio_reply(task.kind, self.pump.serial, data, eod=eod,
                                              retries=task.retries, rssi=task.rssi)
            if eod or task.kind != KIND_CHUNK:
                self.task = None
        else:   # nothing buffered: never captured; answered as "no reply" (approximated)
            reply = frames.encode_radio_reply(KIND_TIMEOUT, self.pump.serial, b"", eod=True)
        if self.faults.fire("corrupt"):
            reply = bytearray(reply)
            reply[frames.RADIO_HEADER if len(reply) > frames.RADIO_HEADER + 1 else -1] ^= 0x5A
            self.radio["crc_errors"] += 1
        reply = bytes(reply[:size]) + bytes(self.buf[len(reply):size])
        self._own(reply)
        self._answer(reply, now, self.timing.radio_latency(len(reply)))

    # --- TransmitPacket: the radio exchange with the pump ------------------------------------

    def _transmit(self, cmd, now):
        try:
            tx = frames.parse_transmit(cmd)
        except ValueError:
            tx = None
        if tx is None or not tx.header_crc_ok or not tx.params_crc_ok:
            self._own(bytes([0x01, frames.NAK, 0x03]))       # approximated: never captured
            return self._answer(self.buf, now, self.timing.usb)
        off = not frames.answered(cmd) and commands.supported("PowerControl", self.pump.model)
        self._own(bytes([0x01, frames.ACK, 0x00]))
        if not off:                 # PowerControl off gets no USB answer at all (§3.7)
            self._answer(self.buf, now, self.timing.usb)
        self.task = self._exchange(tx, now)

    def _timeout(self, tx, now, reason=None):
        """Kind 5 after the stick used all its RF retries."""
        if reason:
            self.faults.counts[reason] += 1
        self.radio["transmitted"] += 1 + tx.retries
        self.radio["timeouts"] += 1
        return RadioTask(KIND_TIMEOUT, [(now + self.timing.rf_try * (1 + tx.retries), b"")],
                         retries=tx.retries, rssi=0)

    def _rssi(self):
        return self.faults.rng.randint(0xD0, 0xDF)

    def _exchange(self, tx, now):
        pump, faults = self.pump, self.faults
        if tx.opcode == POWER_CONTROL and commands.supported("PowerControl", pump.model):
            return self._power_control(tx, now)
        if tx.serial != pump.serial or faults.flag("out_of_range"):
            return self._timeout(tx, now)
        if not pump.awake(now):
            return self._timeout(tx, now, "asleep")
        if self.pump_busy:
            self.pump_busy = False
            return self._timeout(tx, now)
        if faults.fire("timeout"):
            return self._timeout(tx, now)
        if tx.params and faults.fire("drop_args"):
            self.radio["received"] += 1                   # the command packet was ACKed
            return self._timeout(tx, now)
        if faults.fire("nak"):
            self._count(tx, 1)
            self.radio["naks"] += 1
            return self._single(KIND_NAK, bytes([faults.nak_code]), tx, now)
        answer = pump.execute(tx.opcode, tx.params, multi=tx.frames == frames.FRAMES_MANY)
        if answer.entry is not None and answer.write and faults.fire("lost_ack"):
            answer.entry["reply"] = "lost"
            self.ledger.add(answer.entry)
            self.radio["received"] += 1
            return self._timeout(tx, now)
        if answer.entry is not None:
            answer.entry["reply"] = answer.kind
            self.ledger.add(answer.entry)
        if answer.kind == "nak":
            self._count(tx, 1)
            self.radio["naks"] += 1
            return self._single(KIND_NAK, bytes([answer.code]), tx, now)
        if answer.kind == "ack":
            self._count(tx, 1)
            return self._single(KIND_ACK, b"\x00", tx, now)
        payloads = answer.frames
        if len(payloads) == 1 and tx.frames != frames.FRAMES_MANY:
            self._count(tx, 1)
            return self._single(KIND_FRAME, payloads[0], tx, now)
        self._count(tx, len(payloads), multi=True)
        if tx.params:       # command packet + ACK, then the argument packet answered by frame 1
            first, pace = now + self.timing.first_frame, self.timing.frame
        else:               # basal profiles: the command packet is answered by frame 1
            first, pace = now + self.timing.profile_first, self.timing.profile_frame
        chunks = [(first + i * pace, p) for i, p in enumerate(payloads)]
        task = RadioTask(KIND_CHUNK, chunks, rssi=self._rssi())
        if len(chunks) > 1 and faults.fire("stall"):
            task.chunks = chunks[:faults.rng.randint(1, len(chunks) - 1)]
            task.stalled = True
            self.pump_busy = True
        return task

    def _count(self, tx, replies, multi=False):
        """Radio counters (§3.4): command packet, argument packet + its ACK, replies, frame ACKs."""
        self.radio["transmitted"] += 1 + (1 if tx.params else 0) + (replies if multi else 0)
        self.radio["received"] += (1 if tx.params else 0) + replies

    def _single(self, kind, data, tx, now):
        latency = self.timing.write if tx.params else self.timing.reply
        return RadioTask(kind, [(now + latency, data)], rssi=self._rssi())

    def _power_control(self, tx, now):
        """Radio on: a ~17 s wake-up burst during which the stick is silent on USB (§4.7)."""
        pump = self.pump
        if tx.params[:1] == b"\x00":
            pump.sleep()
            self.ledger.add(pump.entry(tx.opcode, tx.params, reply="none"))
            return None
        self.busy_until = now + self.timing.wake
        if tx.serial != pump.serial or self.faults.flag("out_of_range"):
            self.radio["transmitted"] += 1
            self.radio["timeouts"] += 1
            return RadioTask(KIND_TIMEOUT, [(self.busy_until, b"")], retries=tx.retries, rssi=0)
        minutes = tx.params[1] if len(tx.params) > 1 else 10
        pump.wake(self.busy_until, minutes)
        self._count(tx, 1)
        self.ledger.add(pump.entry(tx.opcode, tx.params, reply="ack", minutes=minutes))
        return RadioTask(KIND_ACK, [(self.busy_until, b"\x00")], rssi=self._rssi())

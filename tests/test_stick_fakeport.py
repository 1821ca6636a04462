"""A scripted stick + pump behind a pyserial-like object, on a virtual clock.

Kept beside the emulator on purpose: it scripts one fault at one exact moment on a virtual clock
(no real time passes), which the emulator, running on the real clock, cannot.

The client's error paths (late answers, desync, NAKs, kind 5, CRC errors, stalls) are driven
through it without any real time passing.  Replies are built with ``decocare.frames`` encoders
(the codec itself is held to the real captures elsewhere); timing follows spec §8: a
single-frame reply is buffered ~130 ms after the TransmitPacket, the first page frame ~360 ms,
then one frame every ~145 ms.  The tests at the bottom check the fake against a capture.
"""
import json
from types import SimpleNamespace

from decocare import frames, lib
from decocare.emulator import replies
from decocare.models import get_model


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, dt):
        self.t += max(0.0, dt)


def make_page(seed=0):
    """A 1024-byte page with a valid CRC16 (deterministic filler)."""
    body = bytes((i * 7 + seed) & 0xFF for i in range(1022))
    return body + lib.crc16(body).to_bytes(2, "big")


class Pump:
    """What the pump answers, by opcode.  ``asleep`` until a PowerControl arrives."""

    def __init__(self, model="515", pages=None, asleep=False):
        self.model = model
        self.pages = pages if pages is not None else {0: make_page(0), 1: make_page(1)}
        self.asleep = asleep
        self.executed = []          # (opcode, params) of every command the pump acted on

    def answer(self, opcode, params):
        """('ack',) | ('nak', code) | ('timeout',) | ('data', bytes)"""
        if self.asleep and opcode != 0x5D:
            return ("timeout",)
        self.executed.append((opcode, bytes(params)))
        if opcode == 0x5D:
            self.asleep = False
            return ("ack",)
        if opcode == 0x8D:      # the emulator's builder: the one oracle of the reply layouts
            model = replies.model_number(SimpleNamespace(model=get_model(self.model)))
            return ("data", (model + bytes(64))[:64])
        if opcode == 0x80:
            page = params[0] if params else 0
            return ("data", self.pages[page]) if page in self.pages else ("nak", 0x0D)
        if opcode in (0x4C, 0x4D):
            return ("ack",)
        return ("nak", 0x08)


class FakeStick:
    """pyserial-like: ``write``/``read``/``timeout``.  ``faults`` (each consumed once unless noted):

    * ``late``: {stick opcode: seconds} -- that answer becomes readable only after the delay
      (the host sees 0-byte reads meanwhile); ``silent``: set of stick opcodes never answered;
    * ``stale``: bytes pending before the first command (an answer left from an earlier run);
    * ``tx_nak``: answer the next TransmitPacket ``01 66 03``; ``stick_nak``: that many
      ReadStatus answers are ``01 66 03``;
    * ``kind5``: number of pump commands answered by an RF timeout instead;
    * ``data_crc`` / ``header_crc``: corrupt the CRC of the n-th ReadRadio answer (1-based);
    * ``stall_after``: a multi-frame reply stops after that many frames (once);
    * ``execute_then_timeout``: the pump acts on the next write but its ACK is lost (kind 5).
    """

    def __init__(self, pump=None, serial="208850", clock=None, faults=None):
        self.pump = pump or Pump()
        self.serial = serial
        self.clock = clock or Clock()
        self.faults = dict(faults or {})
        self.timeout = 0.5
        self.port = "fake://stick"
        self.outbox = []            # [ready_at, bytes]
        self.frames = []            # pump frames: [ready_at, kind, data, eod]
        self.writes = []
        self.transmits = []
        self.radio_reads = 0
        self.buffer = bytearray(64)
        self.busy_until = 0.0       # while the wake-up burst runs the stick holds USB answers
        if self.faults.get("stale"):
            self.outbox.append([0.0, bytes(self.faults.pop("stale"))])

    # --- pyserial surface -----------------------------------------------------------------------
    def write(self, data):
        data = bytes(data)
        self.writes.append(data)
        op = data[0]
        late = self.faults.get("late", {}).pop(op, 0.0)
        if op in self.faults.get("silent", ()):
            return len(data)
        busy_until = self.busy_until
        answer = self._answer(op, data)
        if answer is not None:
            self.outbox.append([max(self.clock() + late, busy_until), answer])
        return len(data)

    def read(self, size):
        if self.outbox and self.outbox[0][0] <= self.clock():
            ready_at, data = self.outbox[0]
            out, rest = data[:size], data[size:]
            if rest:
                self.outbox[0][1] = rest
            else:
                self.outbox.pop(0)
            return out
        self.clock.sleep(self.timeout)
        return b""

    def close(self):
        pass

    # --- the stick ------------------------------------------------------------------------------
    def _own(self, head):
        self.buffer[:len(head)] = head
        return bytes(self.buffer)

    def _answer(self, op, data):
        if op == 0x01:
            return self._transmit(data)
        if op == 0x03:
            if self.faults.get("stick_nak"):
                self.faults["stick_nak"] -= 1
                return self._own(b"\x01\x66\x03")
            ready = [f for f in self.frames if f[0] <= self.clock()]
            if ready:
                size = 14 + sum(len(f[2]) for f in ready) if ready[0][1] == frames.KIND_CHUNK \
                    else 14 + len(ready[0][2])
                flags = frames.STATUS_READY | (frames.STATUS_RECEIVING if len(ready) < len(self.frames) else 0)
            else:
                size, flags = 0, frames.STATUS_RECEIVING if self.frames else 0
            return self._own(frames.encode_status(flags, size))
        if op == 0x04:
            return self._own(frames.encode_product_info())
        if op == 0x05:
            return self._own(frames.encode_interface_stats(received=5, transmitted=6))
        if op == 0x06:
            return self._own(b"\x01\x55\x00\xbe")
        if op == 0x0C:
            return self._read_radio(frames.parse_read_radio(data))
        raise AssertionError("fake stick: unknown command %s" % data.hex())

    def _transmit(self, data):
        t = frames.parse_transmit(data)
        self.transmits.append(data)
        if self.faults.pop("tx_nak", False):
            return self._own(b"\x01\x66\x03")
        now = self.clock()
        if self.faults.get("kind5"):
            self.faults["kind5"] -= 1
            self.frames = [[now + 0.6, frames.KIND_TIMEOUT, b"", True]]
            return self._own(b"\x01\x55\x00")
        if self.faults.pop("execute_then_timeout", False):
            self.pump.answer(t.opcode, t.params)
            self.frames = [[now + 0.6, frames.KIND_TIMEOUT, b"", True]]
            return self._own(b"\x01\x55\x00")
        answer = self.pump.answer(t.opcode, t.params)
        wake = 17.0 if t.opcode == 0x5D else 0.0
        if answer[0] == "timeout":
            self.frames = [[now + wake + 0.6, frames.KIND_TIMEOUT, b"", True]]
        elif answer[0] == "ack":
            self.frames = [[now + wake + 0.13, frames.KIND_ACK, b"\x00", True]]
        elif answer[0] == "nak":
            self.frames = [[now + 0.13, frames.KIND_NAK, bytes([answer[1]]), True]]
        else:
            payload = answer[1]
            if len(payload) == 64:
                self.frames = [[now + 0.13, frames.KIND_FRAME, payload, True]]
            else:
                n = len(payload) // 64
                stall = self.faults.pop("stall_after", None)
                self.frames = [[now + 0.36 + 0.145 * i, frames.KIND_CHUNK, payload[64 * i:64 * i + 64],
                                i == n - 1] for i in range(n if stall is None else stall)]
        if wake:
            self.busy_until = now + wake      # spec §4.7: silent on USB during the wake-up
        return self._own(b"\x01\x55\x00")

    def _read_radio(self, size):
        ready = [f for f in self.frames if f[0] <= self.clock()]
        if not ready:
            return None                                   # never captured; not answered
        if ready[0][1] == frames.KIND_CHUNK:
            take = ready
        else:
            take = ready[:1]
        data = b"".join(f[2] for f in take)
        eod = take[-1][3]
        reply = bytearray(frames.encode_radio_reply(take[0][1], self.serial, data, eod=eod))
        assert len(reply) == size, "client asked ReadRadio(%d), %d buffered" % (size, len(reply))
        self.frames = self.frames[len(take):]
        self.radio_reads += 1
        if self.faults.get("data_crc") == self.radio_reads:
            reply[-1] ^= 0xFF
        if self.faults.get("header_crc") == self.radio_reads:
            reply[12] ^= 0xFF
        self.buffer[:min(64, len(reply))] = reply[:64]
        return bytes(reply)

    def count(self, op):
        return sum(1 for w in self.writes if w[0] == op)


# --- checks of the fake itself ------------------------------------------------------------------

def test_fake_answers_like_the_captured_stick(transcripts_dir):
    """The fake's ReadPumpModel exchange has the captured shapes (first_run.csv, spec §1)."""
    fake = FakeStick(Pump(model="515"))
    fake.write(bytes.fromhex("0100a7012088508000000201008dc700"))
    assert fake.read(64)[:3] == b"\x01\x55\x00"
    fake.clock.sleep(0.2)
    fake.write(b"\x03\x00\x00")
    status = fake.read(64)
    assert status[:8] == bytes.fromhex("015500000201004e")
    fake.write(frames.encode_read_radio(78))
    reply = fake.read(78)
    lines = [json.loads(l) for l in open(transcripts_dir / "analysis__experiments__pcaps__first_run__first_run.csv.jsonl")]
    captured = [bytes.fromhex(d["hex"]) for d in lines if d["dir"] == "r" and d["hex"].startswith("020003")
                and d["hex"][26:34] == "03353135"]
    assert captured, "the capture holds a ReadPumpModel reply"
    real = frames.parse_radio_reply(captured[0])
    mine = frames.parse_radio_reply(reply)
    assert (mine.kind, mine.eod, mine.length, mine.serial, mine.data) == \
        (real.kind, real.eod, real.length, real.serial, real.data)
    assert mine.header_crc_ok and mine.data_crc_ok


def test_fake_page_is_paced_and_chunked():
    fake = FakeStick()
    fake.write(frames.encode_transmit("208850", 0x80, b"\x00", frames=2))
    fake.read(64)
    fake.clock.sleep(0.36 + 0.145 * 2)
    fake.write(b"\x03\x00\x00")
    status = frames.parse_status(fake.read(64))
    assert status.flags == 0x03 and status.size == 14 + 3 * 64

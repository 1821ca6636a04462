"""Real USB transcripts (``../shared/fixtures/transcripts/*.jsonl``) read back with the
project's own codec, and replayed as a serial port (``replay://FILE.jsonl``).

``python -m decocare.replay --check FILE.jsonl`` parses every host write and stick reply,
reports anomalies, decodes each complete pump reply with the command catalogue, reassembles
history pages and ends with::

    replay: <w>/<W> writes understood, <r>/<R> replies parsed, <c> pump replies decoded, <p> pages with valid CRC

How replies are matched to requests (the stick answers each command once, in order, but an
answer may come late -- after 0-byte reads, or after the host already wrote the next command):
a reply belongs to the oldest outstanding request whose answer it can be (ReadRadio(n): a
``02`` reply of n bytes; ReadStatus: ``01 55`` with byte 4 = 02; ProductInfo: ``01 55`` saying
"ComLink II"; the others: ``01 55``; a stick NAK ``01 66`` fits any non-ReadRadio request).
If that is not the newest request the reply was read one step behind: a desync.  Requests
skipped that way never got their answer.  A reply that fits no outstanding request is stale.
Ops the transcript marks incomplete are counted apart: an incomplete write still went out (it
waits for an answer), an incomplete read consumed the oldest outstanding answer.
"""
import json
import logging
import os
import stat
import time
from collections import Counter, namedtuple

from . import commands, frames, pages
from .errors import EXIT_ERROR, BadInput, DecocareError

log = logging.getLogger(__name__)



class ReplayMismatch(DecocareError):
    """The client asked something the recording cannot answer (different bytes, or in an order
    that would skip a recorded write): the replay stops rather than invent an answer."""
    exit_code = EXIT_ERROR


Op = namedtuple("Op", "index dir data complete epoch seg line")

# A host request: ``code`` stick opcode, ``size`` expected answer length, ``tp`` the
# TransmitPacket current when it was written (radio replies belong to it), ``transmit`` the
# parsed TransmitPacket for code 0x01.
Request = namedtuple("Request", "index code param size tp transmit")


def load(path):
    """The ops of one transcript file."""
    ops = []
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise BadInput("%s is not a regular file (a transcript is a .jsonl file)" % path)
        with open(path) as fh:
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                d = json.loads(line)
                ops.append(Op(i, d["dir"], bytes.fromhex(d.get("hex") or ""),
                              d.get("complete", True), d.get("epoch"), d.get("seg"), d.get("line")))
    except OSError as exc:
        raise BadInput("cannot read transcript %s: %s" % (path, exc.strerror))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadInput("%s is not a transcript (one JSON USB operation per line): %s" % (path, exc))
    return ops


def understand_write(data):
    """What a host write is, as a Request template; ValueError when the project's codec does not
    re-encode it to the identical bytes."""
    if not data:
        raise ValueError("empty write")
    code = data[0]
    if code == frames.TRANSMIT_PACKET:
        t = frames.parse_transmit(data)
        again = frames.encode_transmit(t.serial, t.opcode, t.params, frames=t.frames,
                                       retries=t.retries, button=t.button)
        if again != data:
            raise ValueError("TransmitPacket does not re-encode identically: %s" % data.hex())
        return Request(None, code, 0, 64 if frames.answered(data) else 0, None, t)
    if code == frames.READ_RADIO:
        size = frames.parse_read_radio(data)
        if frames.encode_read_radio(size) != data:
            raise ValueError("ReadRadio request does not re-encode identically: %s" % data.hex())
        return Request(None, code, 0, size, None, None)   # size 0 is never answered (§2.2)
    op = frames.STICK_OP_BY_CODE.get(code)
    if op is None or len(data) not in (2, 3):
        raise ValueError("unknown stick command %s" % data.hex())
    param = data[1]
    expected = frames.stick_command(op.name, param)[:len(data)]
    if data != expected or param not in op.params:
        raise ValueError("malformed %s: %s" % (op.name, data.hex()))
    return Request(None, code, param, 64, None, None)


def fits(request, data):
    """Can ``data`` be the stick's answer to ``request``?"""
    if request.code == frames.READ_RADIO:
        return data[:1] == b"\x02"
    if data[:2] == b"\x01\x66":
        return True
    if data[:3] != b"\x01\x55\x00" or len(data) != 64:
        return False
    if request.code == frames.READ_STATUS:
        return frames.is_status(data)
    if request.code == frames.PRODUCT_INFO:
        return frames.is_product_info(data)
    return True


STICK_NAMES = {op.code: op.name for op in frames.STICK_OPS}


def describe(request):
    if request.code is None:
        return "a write the transcript lost (incomplete)"
    if request.code == frames.TRANSMIT_PACKET:
        t = request.transmit
        return "TransmitPacket(0x%02X %s)" % (t.opcode, t.params.hex())
    if request.code == frames.READ_RADIO:
        return "ReadRadio(%d)" % request.size
    if request.code == frames.INTERFACE_STATS:
        return "InterfaceStats(%s)" % ("usb" if request.param else "radio")
    return STICK_NAMES[request.code]


class PumpReply:
    """The radio replies the stick delivered for one TransmitPacket."""

    def __init__(self, request):
        self.request = request
        self.chunks = []            # RadioReply, in order
        self.raw = []               # the bytes of each, as read
        self.statuses = []          # ReadStatus answers read while it was current
        self.answer = None          # the TransmitPacket's own USB answer (01 55 00 ...)
        self.corrupt = False        # a chunk failed its CRC8: the reply cannot be whole

    @property
    def complete(self):
        return bool(self.chunks) and (self.chunks[-1].eod or self.chunks[-1].kind != frames.KIND_CHUNK)

    @property
    def data(self):
        return b"".join(c.data for c in self.chunks)


class Check:
    """Walk one transcript with the codec.  Public results: ``writes``/``writes_ok``,
    ``replies``/``replies_ok``, ``decoded`` (list of (name, value)), ``pages`` (list of
    (name, page number, bytes, crc ok)), ``anomalies`` (list of (op index, text)),
    ``incomplete`` (Counter of dir), ``transmits`` (PumpReply per TransmitPacket, in order),
    ``stick_answers`` ({(code, param): [bytes]}) and ``model``."""

    def __init__(self, ops, model=None):
        self.ops = ops
        self.model = model
        self.writes = self.writes_ok = self.replies = self.replies_ok = 0
        self.incomplete = Counter()
        self.anomalies = []
        self.transmits = []
        self.stick_answers = {}
        self.decoded = []
        self.pages = []
        self.undecoded = []
        self._pending = []          # [request, zero-length reads seen]
        self._tp = None
        for op in ops:
            (self._write if op.dir == "w" else self._read)(op)
        for request, _ in self._pending:
            if request.size:
                self._anomaly(request.index, "unanswered: %s got no answer in the transcript" % describe(request))
        self._finish_replies()

    def _anomaly(self, index, text):
        self.anomalies.append((index, text))

    def _write(self, op):
        if not op.complete:
            self.incomplete["w"] += 1
            self._pending.append([Request(op.index, None, 0, 64, self._tp, None), 0])
            return
        self.writes += 1
        try:
            template = understand_write(op.data)
        except ValueError as exc:
            self._anomaly(op.index, "write not understood: %s" % exc)
            return
        self.writes_ok += 1
        request = template._replace(index=op.index, tp=self._tp)
        if request.code == frames.TRANSMIT_PACKET:
            self._close_reply()
            self._tp = PumpReply(request)
            self.transmits.append(self._tp)
            request = request._replace(tp=self._tp)
        if request.size:
            self._pending.append([request, 0])

    def _read(self, op):
        if not op.complete:
            self.incomplete["r"] += 1
            if self._pending:
                self._pending.pop(0)
            return
        if not op.data:
            self._anomaly(op.index, "zero-length read: %s not answered yet"
                          % (describe(self._pending[0][0]) if self._pending else "nothing outstanding"))
            if self._pending:
                self._pending[0][1] += 1
            return
        self.replies += 1
        found = next((k for k, (req, _) in enumerate(self._pending) if req.code is None or fits(req, op.data)), None)
        if found is None:
            request = None
            self._anomaly(op.index, "desync: stale reply %s fits no outstanding request" % op.data[:6].hex())
        else:
            request, empty = self._pending[found]
            for skipped, _ in self._pending[:found]:
                self._anomaly(skipped.index, "unanswered: %s was never answered" % describe(skipped))
            if found < len(self._pending) - 1:
                self._anomaly(op.index, "desync: answer to %s (op %d) read after %s was written"
                              % (describe(request), request.index, describe(self._pending[-1][0])))
            elif empty:
                self._anomaly(op.index, "late answer: %s answered after %d zero-length read%s"
                              % (describe(request), empty, "s" * (empty > 1)))
            self._pending = self._pending[found + 1:]
        if self._parse(op, request):
            self.replies_ok += 1

    def _parse(self, op, request):
        data = op.data
        if data[:1] == b"\x02":
            return self._radio(op, request)
        if data[:2] == b"\x01\x66":
            self._anomaly(op.index, "stick NAK: %s to %s" % (data[:3].hex(), describe(request) if request else "?"))
            return True
        if data[:2] != b"\x01\x55" or len(data) < 3:
            self._anomaly(op.index, "unparsed reply: %s" % data[:8].hex())
            return False
        if request is None or request.code is None:
            return True
        try:
            if request.code == frames.READ_STATUS:
                status = frames.parse_status(data)
                if request.tp is not None:
                    request.tp.statuses.append((status, data))
            elif request.code == frames.PRODUCT_INFO:
                frames.parse_product_info(data)
            elif request.code == frames.INTERFACE_STATS:
                frames.parse_interface_stats(data)
            elif request.code == frames.SIGNAL_STRENGTH:
                frames.parse_signal_strength(data)
            elif request.code == frames.TRANSMIT_PACKET and request.tp is not None:
                request.tp.answer = data
        except DecocareError as exc:
            self._anomaly(op.index, "unparsed reply: %s: %s" % (describe(request), exc))
            return False
        if request.code != frames.TRANSMIT_PACKET and fits(request, data):
            self.stick_answers.setdefault((request.code, request.param), []).append(data)
        return True

    def _radio(self, op, request):
        try:
            reply = frames.parse_radio_reply(op.data)
        except DecocareError as exc:
            self._anomaly(op.index, "corrupt reply: %s" % exc)
            return True
        if not reply.header_crc_ok:
            self._anomaly(op.index, "header CRC: CRC8 mismatch in a radio reply header")
        if not reply.data_crc_ok:
            self._anomaly(op.index, "data CRC: CRC8 mismatch in a radio reply (%d data bytes)" % reply.length)
        if request is not None and request.code == frames.READ_RADIO and len(op.data) != request.size:
            self._anomaly(op.index, "length: radio reply of %d bytes to ReadRadio(%d)" % (len(op.data), request.size))
        tp = request.tp if request is not None and request.tp is not None else self._tp
        if tp is None:
            self._anomaly(op.index, "stale: radio reply with no TransmitPacket before it")
            return True
        if reply.kind == frames.KIND_NAK:
            self._anomaly(op.index, "pump NAK: 0x%02X code %s" % (tp.request.transmit.opcode, reply.data.hex()))
        elif reply.kind == frames.KIND_TIMEOUT:
            self._anomaly(op.index, "RF timeout: kind 5 for 0x%02X after %d stick retries"
                          % (tp.request.transmit.opcode, reply.retries))
        if tp.complete:
            self._anomaly(op.index, "stale: radio reply after the end of data of 0x%02X" % tp.request.transmit.opcode)
            return True
        if reply.header_crc_ok and reply.data_crc_ok:
            tp.chunks.append(reply)
            tp.raw.append(op.data)
        else:
            tp.corrupt = True
        return True

    def _close_reply(self):
        tp = self._tp
        if tp is not None and tp.chunks and not tp.complete:
            self._anomaly(tp.request.index, "stall: reply to 0x%02X stopped after %d bytes, no end of data"
                          % (tp.request.transmit.opcode, len(tp.data)))

    def _finish_replies(self):
        self._close_reply()
        if self.model is None:
            self.model = self._find_model()
        for tp in self.transmits:
            if not tp.complete or tp.corrupt or tp.chunks[-1].kind not in (
                    frames.KIND_FRAME, frames.KIND_CHUNK):
                continue
            self._decode(tp)

    def _find_model(self):
        for tp in self.transmits:
            if tp.request.transmit.opcode == 0x8D and tp.complete and tp.chunks[-1].kind == frames.KIND_FRAME:
                data = tp.data
                if 0 < data[0] < 8:
                    return data[1:1 + data[0]].decode("ascii", "replace")
        return None

    def _decode(self, tp):
        t = tp.request.transmit
        data = tp.data
        try:
            row = commands.for_opcode(t.opcode, self.model)
        except DecocareError as exc:
            self.undecoded.append((t.opcode, str(exc)))
            return
        if len(data) != row.reply_size:
            self._anomaly(tp.request.index, "length: %s reply of %d bytes, expected %d"
                          % (row.name, len(data), row.reply_size))
            return
        if row.kind == "page":
            ok = pages.page_crc_ok(data)
            self.pages.append((row.name, _page_number(t.params), data, ok))
            if not ok:
                self._anomaly(tp.request.index, "page CRC: %s page %d fails its CRC16" % (row.name, _page_number(t.params)))
                return
        try:
            value = commands.decode(row.name, data, self.model)
        except DecocareError as exc:
            self.undecoded.append((t.opcode, str(exc)))
            return
        self.decoded.append((row.name, value))

    def summary(self):
        return ("replay: %d/%d writes understood, %d/%d replies parsed, %d pump replies decoded, "
                "%d pages with valid CRC" % (self.writes_ok, self.writes, self.replies_ok, self.replies,
                                             len(self.decoded), sum(1 for p in self.pages if p[3])))


def _page_number(params):
    return int.from_bytes(params, "big") if params else 0


def check_file(path, model=None):
    return Check(load(path), model=model)


# --- replay:// transport ------------------------------------------------------------------------

class Replay:
    """A recorded session served as a stick.  Rules (docs/protocol-client.md):

    * a TransmitPacket is answered with the answers of the next recorded TransmitPacket whose
      bytes are identical; recorded reads may be skipped on the way, a recorded *write* never
      (skipping one would serve replies from a pump state the client never caused); no match ->
      ``ReplayMismatch`` (the replay fails loudly, it never invents an answer);
    * ReadStatus says "ready, n bytes" for the next recorded radio reply of that TransmitPacket
      (the recorded status bytes when one announced that size), else idle (flags 0, size 0);
    * ReadRadio(n) returns the next recorded radio reply, which must be n bytes long;
    * ProductInfo / SignalStrength / InterfaceStats return the first recorded genuine answer
      (synthesised with the frames encoders when the transcript has none);
    * a command the recording never answered (PowerControl off, ReadRadio(0)) gets no answer;
      a read with nothing to deliver waits out its timeout and returns ``b""``, like a real port.
    """

    def __init__(self, path, sleep=time.sleep):
        self.path = path
        self.sleep = sleep
        self.check = Check(load(path))
        self.cursor = 0
        self.current = []           # radio replies still to deliver: [(status bytes, reply bytes)]
        self.outbox = []
        self.served = []            # indexes of the recorded TransmitPackets answered

    def _is_write(self, tp):
        """A recorded command that changed the pump (PowerControl only powers its radio)."""
        opcode = tp.request.transmit.opcode
        if opcode == 0x5D:
            return False
        try:
            return commands.for_opcode(opcode, self.check.model).write
        except DecocareError:
            return any(row.write for row in commands.COMMANDS if row.opcode == opcode)

    def _transmit(self, data):
        for k in range(self.cursor, len(self.check.transmits)):
            tp = self.check.transmits[k]
            if tp.request.transmit is not None and frames.encode_transmit(
                    *_transmit_args(tp.request.transmit)) == data:
                break
            if self._is_write(tp):
                raise ReplayMismatch(
                    "replay %s: the client sent %s but the recording's next write is %s "
                    "(op %d): it cannot be skipped" % (os.path.basename(self.path), data.hex(),
                                                       frames.encode_transmit(*_transmit_args(tp.request.transmit)).hex(),
                                                       tp.request.index))
        else:
            raise ReplayMismatch("replay %s: the client sent TransmitPacket %s, which the recording "
                                 "does not hold at this point" % (os.path.basename(self.path), data.hex()))
        self.cursor = k + 1
        self.served.append(tp.request.index)
        statuses = [(frames.ready_size(s), raw) for s, raw in tp.statuses]
        self.current = []
        for raw in tp.raw:
            status = next((b for size, b in statuses if size == len(raw)), None)
            if status is not None:
                statuses.remove((len(raw), status))
            else:
                status = _pad(frames.encode_status(frames.STATUS_READY, len(raw)))
            self.current.append((status, raw))
        if tp.request.size == 0:
            return None
        return tp.answer or _pad(b"\x01\x55\x00")

    def answer(self, data):
        """The stick's answer to one host write (None: no answer)."""
        data = bytes(data)
        code = data[:1] and data[0]
        if code == frames.TRANSMIT_PACKET:
            return self._transmit(data)
        if code == frames.READ_STATUS:
            return self.current[0][0] if self.current else _pad(frames.encode_status(0, 0))
        if code == frames.READ_RADIO:
            size = frames.parse_read_radio(data)
            if not self.current or len(self.current[0][1]) != size:
                raise ReplayMismatch("replay %s: ReadRadio(%d) but the recording has %s buffered"
                                     % (os.path.basename(self.path), size,
                                        "%d bytes" % len(self.current[0][1]) if self.current else "nothing"))
            return self.current.pop(0)[1]
        try:
            request = understand_write(data)
        except ValueError as exc:
            raise ReplayMismatch("replay %s: %s" % (os.path.basename(self.path), exc))
        recorded = self.check.stick_answers.get((request.code, request.param))
        if recorded:
            return recorded[0]
        if code == frames.PRODUCT_INFO:
            return _pad(frames.encode_product_info())
        if code == frames.INTERFACE_STATS:
            return _pad(frames.encode_interface_stats())
        return _pad(b"\x01\x55\x00\xbe")

    # the device surface decocare.urlhandler.device wraps
    def write(self, data):
        reply = self.answer(data)
        if reply is not None:
            self.outbox.append(reply)
        return len(data)

    def read(self, size, timeout):
        if not self.outbox:
            self.sleep(timeout or 0)
            return b""
        head = self.outbox[0]
        out, rest = head[:size], head[size:]
        if rest:
            self.outbox[0] = rest
        else:
            self.outbox.pop(0)
        return out

    def in_waiting(self):
        return sum(len(b) for b in self.outbox)

    def reset_input(self):
        self.outbox[:] = []

    def close(self):
        pass


def _transmit_args(t):
    return (t.serial, t.opcode, t.params, t.frames, t.retries, t.button)


def _pad(head):
    return (bytes(head) + bytes(64))[:64]


if __name__ == "__main__":      # python -m decocare.replay: the command line is decocare/tools/replay.py
    from decocare.tools.registry import launch
    launch("decocare.replay")

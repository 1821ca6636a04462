"""The CareLink stick's USB protocol (ComLink2) as one table plus pure encoders/decoders.

No I/O here.  ``STICK_OPS`` is the one table of stick commands: the client (``decocare.stick``)
builds its requests from it, the emulated stick dispatches on it and takes from it how many
bytes of the shared reply buffer each answer owns, the replay recognises requests and answers
with it, and docs/stick-ops.md is generated from it.  The rules about answers live here too:
what a genuine answer looks like, and the one TransmitPacket the stick never answers.  The
tests hold all of it to the real captures in ``../shared/fixtures/transcripts`` (spec §3–§4).
"""
from collections import namedtuple

from .errors import CRCError, Desync, StickNAK
from .lib import crc8, serial_bytes

# One row per stick command.  ``owns`` = how many leading bytes of the stick's shared 64-byte
# reply buffer its answer writes, per request parameter (the rest is stale from earlier replies,
# §3.1; measured over the transcripts); None = the ReadRadio answer, exactly the requested size.
# ``params`` = the parameter bytes the stick accepts (0 for all but InterfaceStats).
StickOp = namedtuple("StickOp", "name code owns params doc")
STICK_OPS = (
    StickOp("TransmitPacket", 0x01, {0: 3}, (0,), "hand one pump command to the stick; answer 01 55 00 = "
            "accepted (PowerControl radio-off gets no answer)"),
    StickOp("ReadStatus", 0x03, {0: 11}, (0,), "link status: flags (bit0 reply buffered) and reply size"),
    StickOp("ProductInfo", 0x04, {0: 26}, (0,), "stick serial, RF region, description, firmware, interfaces"),
    StickOp("InterfaceStats", 0x05, {0: 36, 1: 25}, (0, 1),
            "radio (param 0) or USB (param 1) counters; the USB answer leaves byte 25 stale"),
    StickOp("SignalStrength", 0x06, {0: 4}, (0,), "a signal value 0-255; decocare waited for >= 50"),
    StickOp("ReadRadio", 0x0C, None, (0,), "download the buffered pump reply: exactly the ReadStatus size; "
            "ReadRadio(0) is never answered"),
)
STICK_OP_BY_CODE = {op.code: op for op in STICK_OPS}
STICK_OP_BY_NAME = {op.name: op for op in STICK_OPS}
(TRANSMIT_PACKET, READ_STATUS, PRODUCT_INFO, INTERFACE_STATS, SIGNAL_STRENGTH,
 READ_RADIO) = (op.code for op in STICK_OPS)

ACK, NAK = 0x55, 0x66
RADIO_HEADER = 13          # bytes before the data of a ReadRadio reply
FRAME = 64                 # payload bytes of one pump frame

# ReadRadio reply kinds (§4.5)
KIND_ACK, KIND_NAK, KIND_FRAME, KIND_CHUNK, KIND_TIMEOUT = 1, 2, 3, 4, 5
KIND_NAMES = {1: "ack", 2: "nak", 3: "frame", 4: "chunk", 5: "timeout"}

# ReadStatus flag bits (§3.5)
STATUS_READY, STATUS_RECEIVING, STATUS_TRANSMITTING = 0x01, 0x02, 0x04

# TransmitPacket ``frames`` byte: what reply the stick should wait for (§4.2)
FRAMES_NONE, FRAMES_ONE, FRAMES_MANY = 0, 1, 2


def stick_command(name, param=0):
    """A 3-byte stick command (``CMD param 00``), as decocare writes them."""
    return bytes([STICK_OP_BY_NAME[name].code, param, 0])


def owned(code, param, answer):
    """The leading bytes of ``answer`` that stick command ``code`` writes into the shared buffer."""
    owns = STICK_OP_BY_CODE[code].owns
    return bytes(answer) if owns is None else bytes(answer)[:owns.get(param, max(owns.values()))]


# --- the PowerControl rule ------------------------------------------------------------------

POWER_CONTROL = 0x5D       # the pump command that switches the pump's radio on (or off)
WAKE_BUTTON = 0x55         # TransmitPacket byte 9 of a PowerControl (§4.2)


def answered(packet):
    """False for the one TransmitPacket the stick never answers on USB: PowerControl with first
    parameter 0, radio off (§3.7) -- waiting for its answer would only end in a timeout."""
    packet = bytes(packet)
    return not (len(packet) > 15 and packet[13] == POWER_CONTROL and packet[15] == 0x00)


# --- TransmitPacket -----------------------------------------------------------------------

Transmit = namedtuple("Transmit", "serial opcode params button retries frames header_crc_ok params_crc_ok")
TRANSMIT_HEAD = 9          # bytes of a TransmitPacket that tell its length


def transmit_length(head):
    """Total length of the TransmitPacket whose first TRANSMIT_HEAD bytes are ``head``: 16 + N."""
    return 16 + (((head[7] & 0x7F) << 8) | head[8])


def encode_transmit(serial, opcode, params=b"", frames=FRAMES_ONE, retries=2, button=0):
    """TransmitPacket: ``01 00 A7 01 S1 S2 S3 80|Nhi Nlo button retries frames 00 op CRC params CRC``."""
    params = bytes(params)
    n = len(params)
    head = bytes([0x01, 0x00, 0xA7, 0x01]) + serial_bytes(serial) + bytes(
        [0x80 | (n >> 8), n & 0xFF, button, retries, frames, 0x00, opcode])
    return head + bytes([crc8(head)]) + params + bytes([crc8(params)])


def parse_transmit(data):
    """Read a host TransmitPacket back into its fields (used by the emulator and the replay)."""
    data = bytes(data)
    if len(data) < 16 or data[0] != 0x01 or data[2] != 0xA7:
        raise ValueError("not a TransmitPacket: %s" % data.hex())
    n = transmit_length(data) - 16
    params = data[15:15 + n]
    if len(params) != n or len(data) < 16 + n:
        raise ValueError("TransmitPacket shorter than its %d parameter bytes" % n)
    return Transmit(serial=data[4:7].hex(), opcode=data[13], params=params, button=data[9],
                    retries=data[10], frames=data[11], header_crc_ok=crc8(data[:14]) == data[14],
                    params_crc_ok=crc8(params) == data[15 + n])


# --- ReadRadio ----------------------------------------------------------------------------

def encode_read_radio(size):
    """``0C 00 HH LL CRC``: ask for exactly ``size`` bytes (the ReadStatus size)."""
    head = bytes([0x0C, 0x00, (size >> 8) & 0xFF, size & 0xFF])
    return head + bytes([crc8(head)])


def parse_read_radio(data):
    """The size a ReadRadio request asks for; ValueError when its CRC8 is wrong."""
    data = bytes(data)
    if len(data) < 5 or data[0] != 0x0C or crc8(data[:4]) != data[4]:
        raise ValueError("not a valid ReadRadio request: %s" % data.hex())
    return (data[2] << 8) | data[3]


RadioReply = namedtuple("RadioReply", "kind retries rssi eod length serial data header_crc_ok data_crc_ok")


def encode_radio_reply(kind, serial, data=b"", eod=True, retries=0, rssi=0xDD):
    """A ReadRadio answer: 13-byte header (CRC8), the data, CRC8 of the data (§4.5)."""
    data = bytes(data)
    n = len(data)
    head = bytes([0x02, 0x00, kind, retries, rssi if kind != KIND_TIMEOUT else 0,
                  (0x80 if eod else 0) | ((n >> 8) & 0x7F), n & 0xFF, 0xA7, 0x01]) + serial_bytes(serial)
    return head + bytes([crc8(head)]) + data + bytes([crc8(data)])


def parse_radio_reply(data):
    """Split a ReadRadio answer.  Raises Desync when it is not a radio reply (``01 55`` = a late
    status answer) and CRCError when its length does not hold; CRC8 results are reported."""
    data = bytes(data)
    if len(data) < RADIO_HEADER + 1 or data[0] != 0x02:
        raise Desync("expected a ReadRadio reply (02 ...), got %s" % (data[:8].hex() or "nothing"))
    n = ((data[5] & 0x7F) << 8) | data[6]
    if len(data) < RADIO_HEADER + n + 1:
        raise CRCError("ReadRadio reply of %d bytes is shorter than its declared %d data bytes"
                       % (len(data), n))
    body = data[RADIO_HEADER:RADIO_HEADER + n]
    return RadioReply(kind=data[2], retries=data[3], rssi=data[4], eod=bool(data[5] & 0x80),
                      length=n, serial=data[9:12].hex(), data=body,
                      header_crc_ok=crc8(data[:12]) == data[12],
                      data_crc_ok=crc8(body) == data[RADIO_HEADER + n])


# --- replies to the 64-byte stick commands --------------------------------------------------

def check_ack(reply, name):
    """Validate the ``01 55 00`` header of a 64-byte reply; StickNAK for ``01 66``, Desync otherwise."""
    reply = bytes(reply)
    if len(reply) >= 3 and reply[0] == 0x01 and reply[1] == ACK:
        return reply
    if len(reply) >= 3 and reply[0] == 0x01 and reply[1] == NAK:
        raise StickNAK("stick refused %s (NAK code 0x%02x)" % (name, reply[2]), code=reply[2])
    raise Desync("%s: expected a stick reply 01 55, got %s" % (name, reply[:8].hex() or "nothing"))


Status = namedtuple("Status", "comm flags size tail")


def encode_status(flags, size, tail=b"\x05\x04\x00", comm=0):
    """The 11 bytes ReadStatus owns: ``01 55 00 comm 02 flags size(BE) 05 04 00``."""
    return bytes([0x01, ACK, 0x00, comm, 0x02, flags, (size >> 8) & 0xFF, size & 0xFF]) + bytes(tail[:3])


def parse_status(reply):
    reply = check_ack(reply, "ReadStatus")
    return Status(comm=reply[3], flags=reply[5], size=(reply[6] << 8) | reply[7], tail=reply[8:11])


def is_status(reply):
    """A genuine ReadStatus answer: ``01 55`` with 0x02 in byte 4 and only the documented flag
    bits (§3.5); a late answer to another command is not."""
    reply = bytes(reply)
    return len(reply) >= 11 and reply[:2] == bytes([0x01, ACK]) and reply[4] == 0x02 and not reply[5] & 0xC0


def genuine_status(reply):
    """``parse_status`` of a genuine status answer; Desync for anything else (a late answer)."""
    status = parse_status(reply)
    if not is_status(reply):
        raise Desync("ReadStatus: %s is not a status answer" % bytes(reply)[:11].hex())
    return status


def ready_size(status):
    """What to ReadRadio: the size when comm is OK and the ready bit is set, else 0."""
    return status.size if status.comm == 0 and status.flags & STATUS_READY else 0


RF_REGIONS = {0x00: "916.5 MHz (US)", 0xFF: "916.5 MHz (US)", 0x01: "868.35 MHz (WW)"}
INTERFACE_TYPES = {1: "Paradigm RF", 3: "USB"}


def encode_product_info(stick_serial="0c1700", region=0x00, firmware=(1, 16), version=(0, 0)):
    """The 26 bytes ProductInfo owns (every captured stick says ComLink II, firmware 1.16)."""
    return (bytes([0x01, ACK, 0x00]) + bytes.fromhex(stick_serial) + bytes(version) + bytes([region])
            + b"ComLink II" + bytes(firmware) + bytes([2, 0, 1, 1, 3]))


def is_product_info(reply):
    """A genuine ProductInfo answer owns bytes 0-25 and says ComLink II (§3.2)."""
    reply = bytes(reply)
    return reply[:2] == bytes([0x01, ACK]) and reply[9:19] == b"ComLink II"


def genuine_product_info(reply):
    """``parse_product_info`` of a genuine answer; Desync for a stale one."""
    if not is_product_info(reply):
        raise Desync("ProductInfo: %s is not a product info answer" % bytes(reply)[:12].hex())
    return parse_product_info(reply)


def parse_product_info(reply):
    reply = check_ack(reply, "ProductInfo")
    return {
        "serial": reply[3:6].hex(),
        "product.version": "%d.%d" % (reply[6], reply[7]),
        "rf.freq": RF_REGIONS.get(reply[8], "unknown region 0x%02x" % reply[8]),
        "description": reply[9:19].decode("ascii", "replace"),
        "software.version": "%d.%d" % (reply[19], reply[20]),
        "interfaces": [(reply[22 + 2 * i], INTERFACE_TYPES.get(reply[23 + 2 * i], "unknown"))
                       for i in range(min(reply[21], 2))],
    }


def encode_interface_stats(crc_errors=0, sequence_errors=0, naks=0, timeouts=0, received=0,
                           transmitted=0, extra=b""):
    """The 36 bytes InterfaceStats owns: 4 one-byte error counters, rx and tx as 32-bit BE."""
    body = bytes([0x01, ACK, 0x00, crc_errors & 0xFF, sequence_errors & 0xFF, naks & 0xFF,
                  timeouts & 0xFF]) + (received & 0xFFFFFFFF).to_bytes(4, "big") + \
        (transmitted & 0xFFFFFFFF).to_bytes(4, "big")
    return (body + bytes(extra) + bytes(36))[:36]


def parse_interface_stats(reply):
    reply = check_ack(reply, "InterfaceStats")
    return {"crc_errors": reply[3], "sequence_errors": reply[4], "naks": reply[5],
            "timeouts": reply[6], "received": int.from_bytes(reply[7:11], "big"),
            "transmitted": int.from_bytes(reply[11:15], "big")}


def parse_signal_strength(reply):
    return check_ack(reply, "SignalStrength")[3]

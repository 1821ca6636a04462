"""Small protocol helpers shared by every layer: CRC8, CRC16, hexdump, serial numbers.

One definition of each CRC lives here; the stick codec, the page checks (``pages``), the
emulator and the tests all call these (spec protocol.md §4.3 gives the test vectors).
"""
import binascii

from .errors import BadInput

__all__ = ["crc8", "crc16", "hexdump", "serial_bytes"]


def _make_crc8_table(poly=0x9B):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = ((c << 1) ^ poly) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table.append(c)
    return tuple(table)


CRC8_TABLE = _make_crc8_table()


def crc8(data):
    """CRC8 poly 0x9B, init 0, MSB first (stick headers, params, ReadRadio replies)."""
    crc = 0
    for b in bytes(data):
        crc = CRC8_TABLE[crc ^ b]
    return crc


def crc16(data):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): the check at the end of every page.
    ``binascii.crc_hqx`` is exactly this CRC, in C (30x a Python loop)."""
    return binascii.crc_hqx(bytes(data), 0xFFFF)


def _printable(b):
    return chr(b) if 32 <= b < 127 else "."


def hexdump(data, length=8, indent=0):
    """decocare's hexdump look (``0000   0x01 0x55 ...   .U.``) so old and new logs diff well."""
    data = bytes(data)
    lines = []
    for off in range(0, len(data), length):
        chunk = data[off:off + length]
        hexa = " ".join("0x%02x" % b for b in chunk)
        text = "".join(_printable(b) for b in chunk)
        lines.append("%s%04x   %-*s   %s" % (" " * indent, off, length * 5 - 1, hexa, text))
    return "\n".join(lines)


def serial_bytes(serial):
    """'208850' -> b'\\x20\\x88\\x50': the six serial digits read as hex (spec §4.1)."""
    text = str(serial).strip()
    if len(text) != 6 or not text.isdigit():
        raise BadInput("pump serial must be six digits (the number on the back of the pump), got %r" % (serial,))
    return bytes.fromhex(text)

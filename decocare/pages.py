"""Page geometry, the page CRC check and the page file names: one place for each.

History and glucose pages are 1024 bytes (1022 of records, CRC-16/CCITT big-endian at the end);
ISIG pages are 2048 bytes with the CRC at 2046 (spec protocol.md §4.6).  Downloads, the
emulator, the tools and explain.log name saved pages ``<kind>-page-N.data`` as decocare always
did, so old and new folders diff well.
"""
import re

from .lib import crc16

PAGE_SIZE = 1024                 # history and glucose pages
DATA_SIZE = 1022                 # their record bytes, before the CRC16
ISIG_SIZE = 2048                 # ISIG pages (CRC over 0..2044, big-endian in 2046..2047)

HISTORY, GLUCOSE, ISIG = "ReadHistoryData", "ReadGlucoseHistory", "ReadISIGHistory"
KINDS = (HISTORY, GLUCOSE, ISIG)        # the command names the pages are read with
FILE = re.compile(r"^(%s)-page-(\d+)\.data$" % "|".join(KINDS))


def page_file(kind, number):
    """``ReadHistoryData-page-3.data``."""
    if kind not in KINDS:
        raise ValueError("unknown page kind %r" % (kind,))
    return "%s-page-%d.data" % (kind, number)


def parse_page_file(name):
    """(kind, number) of a page file name, or None."""
    match = FILE.match(name)
    return (match.group(1), int(match.group(2))) if match else None


def page_crc_ok(page):
    """True when a 1024-byte page (or a 2048-byte ISIG page) carries a valid CRC16."""
    page = bytes(page)
    if len(page) == PAGE_SIZE:
        return crc16(page[:DATA_SIZE]) == int.from_bytes(page[DATA_SIZE:], "big")
    if len(page) == ISIG_SIZE:
        return crc16(page[:2045]) == int.from_bytes(page[2046:2048], "big")
    return False


def seal(records):
    """Record bytes (at most DATA_SIZE) zero padded and closed with their CRC16: a whole page."""
    records = bytes(records)
    if len(records) > DATA_SIZE:
        raise ValueError("%d bytes of records do not fit in one page (%d)" % (len(records), DATA_SIZE))
    data = records + bytes(DATA_SIZE - len(records))
    return data + crc16(data).to_bytes(2, "big")

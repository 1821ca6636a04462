"""What the pump tools print and save the same way: JSON with stable key order, record ids,
decoded pages, saved pages, and the exit code for pages that decoded only in part.

The tools import the decoders (history, cgm, commands: tens of ms) inside their functions, not at
module level, so that a tool starts fast (``--help``, a usage error) and pays only for what it runs."""
import base64
import json
import os
import sys

from ..errors import EXIT_PARTIAL
from ..pages import GLUCOSE, HISTORY, page_file


def dump(value):
    """The tools' JSON: stable key order, so two runs diff well."""
    print(json.dumps(value, indent=2, sort_keys=True))


def record_id(rec):
    """decocare/ecc1-style record id: base64 of the record's bytes (head, date, body)."""
    return base64.b64encode(bytes.fromhex(rec["_head"] + rec["_date"] + rec["_body"])).decode("ascii")


def decode(kind, data, model):
    """A page's decoding, lenient (what could be decoded, with ``.complete`` and ``.problem()``)."""
    from .. import cgm, history
    if kind == "glucose":
        return cgm.decode_page(data, model, lenient=True)
    return history.decode_page(data, model, lenient=True)


def page_json(number, result):
    return {"page": number, "crc_ok": result.crc_ok, "complete": result.complete,
            "problem": result.problem() or None, "records": result.records}


def save_page(directory, kind, number, data):
    """Write a raw page to ``directory`` (checked writable before the pump was touched)."""
    if directory:
        os.makedirs(directory, exist_ok=True)
        name = page_file(GLUCOSE if kind == "glucose" else HISTORY, number)
        with open(os.path.join(directory, name), "wb") as fh:
            fh.write(data)


def partial_exit(prog, problems):
    """Exit code after the JSON was printed: 3 with one stderr line per partial page, else 0."""
    for number, problem in problems:
        print("%s: page %d decoded only in part: %s" % (prog, number, problem), file=sys.stderr)
    return EXIT_PARTIAL if problems else 0

"""What the mm-* tools share: their options, one-line usage errors, opening the pump (port →
stick → session → Pump, woken only if it does not answer), page decoding and JSON output.
"""
import argparse
import base64
import contextlib
import json
import logging
import os
import sys

from .. import cgm, cli, history
from ..commands import Pump
from ..errors import EXIT_PARTIAL
from ..link import Link
from ..session import Session
from ..stick import Stick


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (exit 2), not usage + error."""

    def error(self, message):
        print("%s: %s (see --help)" % (self.prog, message), file=sys.stderr)
        sys.exit(2)


def parser(prog, description):
    """A parser with --port/--serial/-v, --model and --rf-minutes."""
    p = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_port_options(p)
    p.add_argument("--model", help="pump model, e.g. 523 (default: ask the pump with ReadPumpModel)")
    p.add_argument("--rf-minutes", type=int, default=10, metavar="N",
                   help="when the pump must be woken, keep its radio on N minutes (default 10)")
    return p


def parse(p, argv):
    """Parsed args; without -v only the final error line reaches stderr (the session's retry
    warnings are shown with -v, along with every USB operation)."""
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    if not args.verbose:
        logging.getLogger("decocare").setLevel(logging.ERROR)
    cli.require_serial(args, p)
    return args


@contextlib.contextmanager
def open_pump(port, serial, model=None, minutes=10, wake=True, stick_options=None,
              session_options=None):
    """Port -> stick -> session -> Pump, awake: the pump's radio is switched on (PowerControl,
    ~17 s) only when a ReadPumpModel probe gets no answer, and that probe's answer gives the
    model (``wake=False``: no probe, e.g. replaying a recording that has none).  The options
    (e.g. ``poll_interval``) let tests match the emulator's fast timing."""
    with Link(port or cli.find_port()) as link:
        stick = Stick(link, **(stick_options or {}))
        stick.open()
        pump = Pump(Session(stick, serial, **(session_options or {})), model=model)
        if wake:
            pump.ensure_awake(minutes)
        yield pump


def open_args(args):
    """``open_pump`` for a tool's parsed ``--port --serial --model --rf-minutes``."""
    return open_pump(args.port, args.serial, model=args.model, minutes=args.rf_minutes)


def dump(value):
    """The tools' JSON: stable key order, so two runs diff well."""
    print(json.dumps(value, indent=2, sort_keys=True))


def record_id(rec):
    """decocare/ecc1-style record id: base64 of the record's bytes (head, date, body)."""
    return base64.b64encode(bytes.fromhex(rec["_head"] + rec["_date"] + rec["_body"])).decode("ascii")


def decode(kind, data, model):
    """A page's decoding, lenient (what could be decoded, with ``.complete`` and ``.problem()``)."""
    if kind == "glucose":
        return cgm.decode_page(data, model, lenient=True)
    return history.decode_page(data, model, lenient=True)


def page_json(number, result):
    return {"page": number, "crc_ok": result.crc_ok, "complete": result.complete,
            "problem": result.problem() or None, "records": result.records}


PAGE_FILE = {"history": "ReadHistoryData-page-%d.data", "glucose": "ReadGlucoseHistory-page-%d.data"}


def save_page(directory, kind, number, data):
    if directory:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, PAGE_FILE[kind] % number), "wb") as fh:
            fh.write(data)


def partial_exit(prog, problems):
    """Exit code after the JSON was printed: 3 with one stderr line per partial page, else 0."""
    for number, problem in problems:
        print("%s: page %d decoded only in part: %s" % (prog, number, problem), file=sys.stderr)
    return EXIT_PARTIAL if problems else 0

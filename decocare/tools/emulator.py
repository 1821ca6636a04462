"""python -m decocare.emulator (decocare-emulator): serve an emulated CareLink stick + pump on
a pseudo-terminal.  The first stdout line is the port to give every decocare tool (--port); it
serves until SIGTERM or SIGINT, then removes its symlink.  Bad arguments are refused before
anything is served; if serving ever fails, the process ends with that error."""
import os
import signal
import stat
import sys
import threading

from .. import errors
from ..emulator import Emulator
from ..emulator.faults import help_text
from ..models import KNOWN
from ..pages import ISIG, ISIG_SIZE, PAGE_SIZE, parse_page_file
from . import options


def parser():
    p = options.Parser(
        prog="python -m decocare.emulator", formatter_class=options.RawDescription,
        description="Serve an emulated CareLink USB stick with a MiniMed Paradigm pump behind it on a "
                    "pseudo-terminal, so every decocare tool runs against it as against /dev/ttyUSB0. "
                    "Prints the port on its first line; stop it with Ctrl-C or SIGTERM.",
        epilog="--faults " + help_text() + "\n\nexample: python -m decocare.emulator --model 523 "
               "--serial 736868 --pages logs/ --faults lost_ack=0.2,seed=3 --ledger ledger.jsonl")
    p.add_argument("--model", default="522", choices=KNOWN, help="pump model (default 522)")
    p.add_argument("--serial", default="208850", type=options.serial_arg, help="pump serial (default 208850)")
    p.add_argument("--pages", metavar="DIR",
                   help="serve the history in DIR/ReadHistoryData-page-N.data byte-identical "
                        "(default: a generated few weeks)")
    p.add_argument("--link", default="./carelink.ttyUSB0",
                   help="symlink to the pty (default ./carelink.ttyUSB0; '' for none)")
    p.add_argument("--timing", default="real", choices=("fast", "real"),
                   help="real: latencies of a real stick (wake-up ~17 s); fast: tiny (tests). default real")
    p.add_argument("--faults", default=None, metavar="SPEC", help="faults to inject, see below")
    p.add_argument("--ledger", metavar="FILE", help="append one JSON line per command the pump executed")
    p.add_argument("--seed", type=lambda t: options.bounded_int(t, 0, 2 ** 32 - 1, "--seed"), default=0,
                   help="seed of the generated history (default 0)")
    p.add_argument("--cur-page", type=lambda t: options.bounded_int(t, 0, 0xFFFFFFFF, "--cur-page"),
                   default=None, help="what ReadCurPageNumber answers (default: number of pages - 1)")
    p.add_argument("--asleep", action="store_true", help="start with the pump radio asleep")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    faults = args.faults
    if args.asleep:
        faults = ",".join(filter(None, [faults, "asleep"]))
    if args.ledger:
        _check_ledger(args.ledger)
    if args.link and not os.path.isdir(os.path.dirname(os.path.abspath(args.link))):
        raise errors.BadInput("--link %s: its folder does not exist" % args.link)
    if args.pages:
        _check_pages(args.pages)
    try:
        emu = Emulator(model=args.model, serial=args.serial, pages=args.pages, timing=args.timing,
                       faults=faults, ledger=args.ledger, seed=args.seed, cur_page=args.cur_page)
    except OSError as exc:
        raise errors.BadInput("cannot start the emulator: %s" % (exc.strerror or exc))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        try:
            port = emu.serve_pty(args.link or None)
        except OSError as exc:
            raise errors.BadInput("--link %s: %s" % (args.link, exc.strerror or exc))
        print(port, flush=True)
        print("emulated %s #%s (%s timing); stop with Ctrl-C" % (args.model, args.serial, args.timing),
              file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            failure = emu.serving_error()
            if failure:
                raise errors.DecocareError("the emulator stopped serving: %s" % failure)
    finally:
        emu.close()
    return 0


def _check_ledger(path):
    """--ledger: a regular file (new or to append to); a FIFO would block, /dev/zero swallow it."""
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise errors.BadInput("--ledger %s: not a regular file" % path)
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise errors.BadInput("--ledger %s: cannot write it (%s)" % (path, exc.strerror or exc))


def _check_pages(folder):
    """--pages: every page file in it a regular file of a page's size (a FIFO would block the
    loading, a folder or a short file cannot be served)."""
    if not os.path.isdir(folder):
        raise errors.BadInput("--pages %s: no such folder" % folder)
    for name in sorted(os.listdir(folder)):
        page = parse_page_file(name)
        if not page:
            continue
        path = os.path.join(folder, name)
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise errors.BadInput("--pages %s: %s is not a regular file" % (folder, name))
        size = ISIG_SIZE if page[0] == ISIG else PAGE_SIZE
        if info.st_size != size:
            raise errors.BadInput("--pages %s: %s has %d bytes, a page has %d"
                                  % (folder, name, info.st_size, size))

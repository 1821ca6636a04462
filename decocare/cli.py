"""What every decocare tool shares: --port/--serial/-v options, finding the stick, and turning a
typed error into one line on stderr and an exit code (no tracebacks for expected failures).
"""
import argparse
import glob
import logging
import os
import sys

from . import errors
from .lib import serial_bytes

STICK_GLOBS = ("/dev/serial/by-id/*0a21_8001*", "/dev/ttyUSB.Carelink*")


def find_port():
    """The CareLink stick's port: $DECOCARE_PORT, else the first /dev/serial/by-id match, else
    the stick's ttyUSB found in /sys."""
    env = os.environ.get("DECOCARE_PORT")
    if env:
        return env
    for pattern in STICK_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    from .scan import sysfs_ports   # no udev links (containers, minimal systems): ask /sys
    found = sysfs_ports()
    if found:
        return found[0]
    raise errors.PortError("no CareLink stick found (is it plugged in? run sudo ./insert.sh); "
                           "give --port, e.g. --port /dev/ttyUSB0 or --port emulator://")


def serial_arg(text):
    """argparse type for a pump serial: six digits."""
    try:
        serial_bytes(text)
    except errors.BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc))
    return text


def add_port_options(parser, serial=True):
    """--port, --serial (from $DECOCARE_SERIAL / $SERIAL when not given), -v."""
    parser.add_argument("--port", default=None,
                        help="serial port or URL: /dev/ttyUSB0, socket://host:port, emulator://, "
                             "replay://FILE.jsonl (default: $DECOCARE_PORT or the plugged-in stick)")
    if serial:
        parser.add_argument("--serial", type=serial_arg,
                            default=os.environ.get("DECOCARE_SERIAL") or os.environ.get("SERIAL"),
                            help="pump serial number, six digits (default: $DECOCARE_SERIAL or $SERIAL)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log every USB operation as a hexdump (-vv: more)")
    return parser


def setup_logging(verbose):
    level = logging.WARNING if not verbose else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s:%(name)s:%(message)s")


def require_serial(args, parser):
    if not getattr(args, "serial", None):
        parser.error("--serial is required (the six digits on the back of the pump)")
    return args.serial


def run(main, argv=None, prog=None):
    """Call ``main(argv)`` and exit with its return code; a DecocareError becomes one line on
    stderr and its exit code, Ctrl-C exits 130, a broken pipe exits quietly."""
    prog = prog or os.path.basename(sys.argv[0])
    try:
        code = main(argv)
    except errors.DecocareError as exc:
        print("%s: %s" % (prog, exc), file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("%s: interrupted" % prog, file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 0
    sys.exit(code or 0)

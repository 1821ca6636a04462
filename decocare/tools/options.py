"""The options every decocare tool shares, parsed one way.

``--port`` (default: the stick ``decocare.scan`` finds), ``--serial`` (six digits, default
$DECOCARE_SERIAL / $SERIAL), ``-v``; pump tools add ``--model`` (a claim the pump's own answer
is checked against), ``--rf-minutes`` (``--minutes`` is the same option) and ``--no-wake``.
Tools that historically took ``PORT SERIAL`` as positionals (``python -m decocare.session``,
``.download``, ``.commands``, ``.stick``) still do.  Usage errors are one line, exit 2.
"""
import argparse
import os
import re
import stat
import sys

from .. import errors
from ..lib import serial_bytes

RawDescription = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (exit 2), not usage + error."""

    def error(self, message):
        print("%s: %s (see --help)" % (self.prog, message), file=sys.stderr)
        sys.exit(errors.EXIT_USAGE)


def parser(prog, description, pump=True, positionals=False, wake=True):
    """A Parser with the shared options (see the module docstring)."""
    p = Parser(prog=prog, description=description, formatter_class=RawDescription)
    if positionals:
        p.add_argument("port_arg", nargs="?", metavar="PORT", help="serial port or URL (same as --port)")
        if pump:
            p.add_argument("serial_arg", nargs="?", metavar="SERIAL", type=serial_arg,
                           help="pump serial number, six digits (same as --serial)")
    p.add_argument("--port", default=None,
                   help="serial port or URL: /dev/ttyUSB0, socket://host:port, emulator://, "
                        "replay://FILE.jsonl (default: $DECOCARE_PORT or the plugged-in stick)")
    if pump:
        p.add_argument("--serial", type=serial_arg,
                       default=os.environ.get("DECOCARE_SERIAL") or os.environ.get("SERIAL"),
                       help="pump serial number, six digits (default: $DECOCARE_SERIAL or $SERIAL)")
        p.add_argument("--model", type=model_arg,
                       help="the pump's model, e.g. 523: checked against what the pump reports "
                            "(a disagreement is an error); needed only for a 508/511, which "
                            "cannot tell it")
        p.add_argument("--rf-minutes", "--minutes", dest="rf_minutes", type=minutes_arg, default=10,
                       metavar="N", help="when the pump must be woken, keep its radio on N minutes "
                                         "(1-255, default 10)")
        if wake:
            p.add_argument("--no-wake", action="store_true",
                           help="do not probe or wake the pump first (e.g. replaying a recording)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log every USB operation as a hexdump on stderr (-vv: more)")
    return p


def parse(p, argv, serial=True):
    """Parsed args with ``port``/``serial`` resolved; without -v only the final error line reaches
    stderr (retries and every USB operation are shown with -v)."""
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    for given, option in (("port_arg", "port"), ("serial_arg", "serial")):
        value = getattr(args, given, None)
        if value:
            if getattr(args, option) and getattr(args, option) != value and option in _explicit(argv):
                p.error("%s given twice: %s and --%s %s" % (option.upper(), value, option,
                                                            getattr(args, option)))
            setattr(args, option, value)
    if serial and hasattr(args, "serial") and not args.serial:
        p.error("the pump serial is required: --serial SERIAL (the six digits on the back of the pump)")
    return args


def _explicit(argv):
    """The long options given on the command line (not defaults from the environment)."""
    argv = sys.argv[1:] if argv is None else argv
    return {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}


def setup_logging(verbose):
    import logging          # (imported here, like the decoders in the tools: a tool starts fast)
    level = logging.WARNING if not verbose else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s:%(name)s:%(message)s")
    if not verbose:
        logging.getLogger("decocare").setLevel(logging.ERROR)


def serial_arg(text):
    """argparse type for a pump serial: six digits."""
    try:
        serial_bytes(text)
    except errors.BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc))
    return text


def model_arg(text):
    try:
        from ..models import get_model
        return str(get_model(text))
    except errors.BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc))


def minutes_arg(text):
    return bounded_int(text, 1, 255, "minutes")


def bounded_int(text, low, high, what):
    """argparse type for a whole number in low..high (no OverflowError for huge values)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%s must be a whole number, got %r" % (what, text))
    if not low <= value <= high:
        raise argparse.ArgumentTypeError("%s must be from %d to %d, got %s" % (what, low, high, text))
    return value


TZ_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")


def zone(name):
    """The tz database zone ``name`` (e.g. Europe/Paris; None: the host's zone), for --timezone.
    Only zone names are taken -- not paths, which dateutil would also open (and dateutil 4 warns
    about, as an error) -- and anything unknown is one BadInput line."""
    from dateutil import tz
    if not name:
        return tz.tzlocal()
    found = None
    if TZ_NAME.fullmatch(name) and ".." not in name:
        try:
            found = tz.gettz(name)
        except Exception:           # dateutil's own warnings-as-errors, bad files: not a zone
            found = None
    if found is None:
        raise errors.BadInput("--timezone %r: unknown time zone (use a tz database name like "
                              "Europe/Paris); nothing was sent to the pump" % name)
    return found


def open_args(args, **options):
    """``connect.open_pump`` for a tool's parsed --port --serial --model --rf-minutes --no-wake."""
    from ..connect import open_pump
    return open_pump(args.port, args.serial, model=args.model, minutes=args.rf_minutes,
                     wake=not getattr(args, "no_wake", False), **options)


def writable_dir(path, what="--out"):
    """Make sure ``path`` is a folder we can write, before the pump is touched (BadInput)."""
    if not path:
        return path
    try:
        os.makedirs(path, exist_ok=True)
        # a probe of its own: two tools checking one folder at once must not trip on each other
        import tempfile
        fd, probe = tempfile.mkstemp(prefix=".decocare-write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise errors.BadInput("%s %s: cannot write there (%s); nothing was sent to the pump"
                              % (what, path, exc.strerror or exc))
    return path


def writable_file(path, what="--save"):
    """Make sure ``path`` can be written (its folder exists and is writable), before the pump is
    touched; the file itself is not created."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise errors.BadInput("%s %s is a folder, not a file; nothing was sent to the pump" % (what, path))
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        # a FIFO would block the write, /dev/zero would swallow it
        raise errors.BadInput("%s %s is not a regular file; nothing was sent to the pump" % (what, path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise errors.BadInput("%s %s: cannot write in %s; nothing was sent to the pump" % (what, path, folder))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise errors.BadInput("%s %s: not writable; nothing was sent to the pump" % (what, path))
    return path

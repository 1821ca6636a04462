"""The write tools: mm-temp-basals.py, mm-bolus.py, mm-set-suspend.py, mm-set-rtc.py,
mm-press-key.py, mm-select-profile.py -- command lines over ``decocare.dosing.Writer`` (check,
send once, verify; docs/dosing.md).

What the user sees is never rosier than what is known: an interrupt (Ctrl-C, SIGTERM) or a
broken port after a write's TransmitPacket may have left is "uncertain", exit 7, with the
"check the pump" message; before that moment it is "not sent".
"""
import argparse
import datetime
import json
import math
import os
import signal
import stat
import sys

from .. import errors
from ..vocabulary import KEYS, PATTERN_NAMES
from . import options

OUTCOME_HELP = """
outcomes (exit code): delivered (0) = sent once and verified by reading back;
refused (6) = nothing delivered: the pump's NAK code or decocare's own check says why
(4/5 when the port or the pump's radio failed before anything was sent);
uncertain (7) = sent once, outcome unknown: check the pump; decocare never re-sends.
Interrupted (Ctrl-C, SIGTERM): uncertain (7) once the command may have left, else not sent (130).
"""
KEY_NAMES = tuple(key.lower() for key in KEYS)


def _parser(prog, description, dry_run=True):
    p = options.parser(prog, description + OUTCOME_HELP, wake=False)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (outcome delivered/refused/uncertain, received and "
                        "decocare's recieved, requested, read-back, openaps' keys)")
    if dry_run:
        p.add_argument("--dry-run", action="store_true",
                       help="read the pump and check everything, print the TransmitPacket that "
                            "would be sent, send nothing")
    return p


def _late_options(sub):
    """The shared options again after a sub-command (``... set --rate 1 --json``); SUPPRESS
    keeps a value given before the sub-command."""
    for flags, kwargs in ((("--json",), dict(action="store_true")),
                          (("--dry-run",), dict(action="store_true")),
                          (("--port",), dict()), (("--serial",), dict(type=options.serial_arg))):
        sub.add_argument(*flags, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def _print(args, prog, result):
    from ..dosing import REFUSED, UNCERTAIN
    print(json.dumps(result.as_json(), indent=2, default=str) if args.json else result.text())
    if result.outcome == UNCERTAIN:
        print("%s: UNCERTAIN: %s" % (prog, result.reason), file=sys.stderr)
    elif result.outcome == REFUSED:     # stdout may go to a file: the reason shows on stderr too
        print("%s: refused: %s" % (prog, result.reason), file=sys.stderr)
    return result.exit_code


INTERRUPTED_ADVICE = ("CHECK THE PUMP (its history and what it is delivering) before doing anything "
                      "else; do NOT repeat it")


class _Interrupts:
    """Ctrl-C and SIGTERM during a write: the first one interrupts (KeyboardInterrupt), any later
    one is ignored -- once the outcome is being reported it must be reported whole, never cut
    short into a plain "interrupted" (exit 130 means nothing was sent)."""

    def __init__(self):
        self.held = False
        self.saved = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.saved[sig] = signal.signal(sig, self._handle)
            except (ValueError, OSError):     # not the main thread (tests): keep what is there
                pass

    def _handle(self, signum, frame):
        if self.held:
            return
        self.held = True
        raise KeyboardInterrupt("SIGTERM" if signum == signal.SIGTERM else "SIGINT")

    @property
    def command_line(self):
        """Run by registry.run (a command line that exits right after the outcome)."""
        from .registry import _terminate
        return self.saved.get(signal.SIGTERM) is _terminate

    def hold(self):
        """From here on no interrupt: the outcome is printed.  A command line ignores the signals
        outright (SIG_IGN also holds while Python shuts down, when a Python handler would be
        reset and a late Ctrl-C would kill the process before its output is flushed)."""
        self.held = True
        if self.command_line:
            for sig in self.saved:
                signal.signal(sig, signal.SIG_IGN)

    def restore(self):
        """The handlers as they were (in-process callers); a command line keeps ignoring them
        until it exits: an interrupt in that last moment must not turn the outcome into
        "interrupted" or cut its output."""
        if self.command_line:
            return
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _write(args, prog, act, **writer_options):
    """Open the pump, run ``act(writer) -> Result``, print it.  A failure before anything was
    sent is ``refused`` (with --json) and never hidden; an interrupt or failure after a write
    may have left is ``uncertain``."""
    state = {"writer": None, "result": None}
    interrupts = _Interrupts()
    try:
        return _write_flow(args, prog, act, state, interrupts, writer_options)
    except KeyboardInterrupt:
        return _interrupted(args, prog, state, interrupts)
    finally:
        interrupts.restore()


def _uncertain(args, prog, reason):
    """Report a write that may have left and whose outcome is unknown (exit 7)."""
    from ..dosing import UNCERTAIN, Result
    result = Result(prog, {}).finish(UNCERTAIN, reason)
    result.sent = True
    return _print(args, prog, result)


def _interrupted(args, prog, state, interrupts):
    """The report of an interrupt: the known outcome, else uncertain once the packet may have
    left, else not sent (130)."""
    interrupts.hold()
    result, writer = state["result"], state["writer"]
    if result is not None:                  # the outcome was known before the interrupt
        return _print(args, prog, result)
    if writer is not None and writer.transmitted:
        return _uncertain(args, prog, "interrupted after the command was sent: it may have been "
                          "executed; %s" % INTERRUPTED_ADVICE)
    print("%s: interrupted before anything was sent: not sent" % prog, file=sys.stderr)
    return errors.EXIT_INTERRUPTED


def _write_flow(args, prog, act, state, interrupts, writer_options):
    from ..dosing import REFUSED, Result, Writer
    from ..journal import Journal
    try:
        with options.open_args(args) as pump:
            state["writer"] = writer = Writer(pump, dry_run=getattr(args, "dry_run", False),
                                              journal=Journal(args.serial), **writer_options)
            state["result"] = act(writer)
    except errors.DecocareError as exc:
        interrupts.hold()
        writer = state["writer"]
        if writer is not None and writer.transmitted:
            return _uncertain(args, prog, "the write was sent once, then: %s; check the pump before "
                              "doing anything else" % exc)
        if not args.json:
            raise
        result = Result(prog, {}).finish(REFUSED, "nothing sent: %s" % exc)
        result.link_failure = exc.exit_code
        return _print(args, prog, result)
    interrupts.hold()
    return _print(args, prog, state["result"])


def _query(args, read):
    with options.open_args(args) as pump:
        print(json.dumps(read(pump), indent=2, default=str))
    return 0


def _finite(text):
    """argparse type: a finite number (no nan/inf, no 1e400)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if math.isnan(value) or math.isinf(value):
        raise argparse.ArgumentTypeError("not a finite number: %r" % text)
    return value


def _minutes(text):
    return options.bounded_int(text, 0, 1440, "duration (minutes)")


def temp_basals_main(argv=None):
    prog = "mm-temp-basals.py"
    p = _parser(prog, "Query, set or cancel a temp basal: checked against the pump's increments "
                      "and max basal, sent once, read back.  'set --from suggested.json' takes "
                      "oref0-determine-basal's output (its rate and duration).")
    sub = p.add_subparsers(dest="action", required=True, metavar="query|set|percent|cancel")
    p_query = sub.add_parser("query", help="print the running temp basal {temp, rate, duration}")
    p_set = sub.add_parser("set", help="absolute temp basal: --rate U/h --duration MIN, or --from FILE")
    p_set.add_argument("--rate", type=_finite, help="U/h, on the model's step")
    p_set.add_argument("--from", dest="from_file", metavar="FILE",
                       help="oref0-determine-basal's suggested.json ('-' = stdin): its 'rate' and "
                            "'duration' (rounded down to the pump's step); a suggestion without "
                            "them sends nothing and says so")
    p_set.add_argument("--max-basal", type=_finite, default=None,
                       help="check against this max basal (U/h) instead of reading ReadSettings "
                            "(one RF exchange less; the pump still refuses above its own)")
    p_pct = sub.add_parser("percent", help="percent temp basal: --percent P --duration MIN")
    p_pct.add_argument("--percent", type=int, required=True, help="0-100 %%")
    p_set.add_argument("--duration", type=_minutes, help="minutes, a multiple of 30 up to 1440 (0 cancels)")
    p_pct.add_argument("--duration", type=_minutes, required=True,
                       help="minutes, a multiple of 30 up to 1440 (0 cancels)")
    p_cancel = sub.add_parser("cancel", help="cancel the running temp basal")
    for one in (p_query, p_set, p_pct, p_cancel):
        _late_options(one)
    args = options.parse(p, argv)
    if args.action == "query":
        return _query(args, lambda pump: pump.read("ReadBasalTemp"))
    if args.action == "cancel":
        return _write(args, prog, lambda w: w.cancel_temp_basal())
    if args.action == "percent":
        return _write(args, prog, lambda w: w.temp_basal(percent=args.percent, duration=args.duration))
    if args.from_file is not None:
        if args.rate is not None or args.duration is not None:
            p.error("give --from FILE or --rate/--duration, not both")
        suggestion = read_suggestion(args.from_file)
        if suggestion is None:
            return _nothing(args, prog, args.from_file)
        rate, duration, why = suggestion
        return _write(args, prog, lambda w: w.temp_basal(rate=rate, duration=duration, round_down=True,
                                                         reason=why), max_basal=args.max_basal)
    if args.rate is None or args.duration is None:
        p.error("set needs --rate and --duration (or --from suggested.json)")
    return _write(args, prog, lambda w: w.temp_basal(rate=args.rate, duration=args.duration),
                  max_basal=args.max_basal)


def read_suggestion(path):
    """(rate, duration, reason) of an oref0 suggestion, or None when it asks for no temp basal
    (oref0 then leaves out rate and duration).  BadInput for anything that is not one."""
    if path != "-" and os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise errors.BadInput("--from %s: not a regular file (a FIFO or a device is not read)" % path)
    try:
        if path == "-":
            text = sys.stdin.read(1 << 20)
        else:
            with open(path) as fh:
                text = fh.read(1 << 20)
        suggestion = json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.BadInput("--from %s: cannot read it (%s)" % (path, getattr(exc, "strerror", exc) or exc))
    except ValueError as exc:
        raise errors.BadInput("--from %s: not JSON (%s)" % (path, exc))
    if not isinstance(suggestion, dict):
        raise errors.BadInput("--from %s: not an oref0 suggestion (a JSON object)" % path)
    if "rate" not in suggestion and "duration" not in suggestion:
        return None
    rate, duration = suggestion.get("rate"), suggestion.get("duration")
    if suggestion.get("temp", "absolute") != "absolute":
        raise errors.BadInput("--from %s: temp %r; only absolute temp basals are taken"
                              % (path, suggestion.get("temp")))
    for key, value in (("rate", rate), ("duration", duration)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise errors.BadInput("--from %s: %s must be a number, got %r" % (path, key, value))
    return float(rate), duration, suggestion.get("reason")


def _nothing(args, prog, path):
    """oref0 suggested no temp basal: nothing is sent, and the tool says so (exit 0)."""
    out = {"outcome": "nothing to do", "sent": False, "received": False, "recieved": False,
           "reason": "the suggestion in %s holds no rate and duration: no temp basal was asked "
                     "for, nothing was sent" % path}
    print(json.dumps(out, indent=2) if args.json else "nothing sent: %s" % out["reason"])
    return 0


def bolus_main(argv=None):
    prog = "mm-bolus.py"
    p = _parser(prog, "Deliver a normal bolus: refused while bolusing or suspended or above the "
                      "pump's max bolus; sent once; verified with the pump status and the newest "
                      "Bolus record of history page 0.  An uncertain bolus must never be repeated "
                      "before checking the pump.")
    p.add_argument("units", type=_finite, help="units of insulin, on the model's bolus step")
    p.add_argument("--yes", action="store_true",
                   help="confirm: really deliver this bolus (required unless --dry-run)")
    args = options.parse(p, argv)
    if not (args.yes or args.dry_run):
        p.error("a bolus needs --yes to confirm (or --dry-run to only show it)")
    return _write(args, prog, lambda w: w.bolus(args.units))


def set_suspend_main(argv=None):
    prog = "mm-set-suspend.py"
    p = _parser(prog, "Query, suspend or resume insulin delivery; verified with ReadPumpStatus "
                      "(x12: history page 0).")
    p.add_argument("action", choices=("query", "suspend", "resume"))
    args = options.parse(p, argv)
    if args.action == "query":
        return _query(args, lambda pump: pump.read("ReadPumpStatus"))
    return _write(args, prog, lambda w: w.set_suspend(args.action == "suspend"))


def pump_time(to, timezone=None):
    """The naive pump-local time for ``--to``: 'now' = the host's clock converted to the pump's
    zone (``timezone``, default the host's); an ISO time with an offset is converted likewise;
    one without an offset is taken as pump-local already."""
    from dateutil import parser as dateparser
    zone = options.zone(timezone)
    if to == "now":
        return datetime.datetime.now(zone).replace(tzinfo=None, microsecond=0)
    try:
        when = dateparser.isoparse(to)
        if when.tzinfo is not None:
            when = when.astimezone(zone)
    except (ValueError, OverflowError) as exc:
        raise errors.BadInput("--to %r is not an ISO 8601 time the pump can hold, or 'now' (%s)"
                              % (to, exc))
    return when.replace(tzinfo=None, microsecond=0)


def set_rtc_main(argv=None):
    from ..dosing import CLOCK_TOLERANCE     # (decocare.dosing is imported only where a tool runs)
    prog = "mm-set-rtc.py"
    p = _parser(prog, "Query or set the pump's clock (naive local time); verified with ReadRTC "
                      "within %d s." % CLOCK_TOLERANCE)
    p.add_argument("action", choices=("query", "set"))
    p.add_argument("--to", default="now",
                   help="'now' (default: the host's clock in the pump's zone) or an ISO time, e.g. "
                        "2024-03-01T14:05:00 (pump-local) or with an offset")
    p.add_argument("--timezone", default=None,
                   help="the pump's time zone when it differs from the host's (e.g. America/New_York)")
    args = options.parse(p, argv)
    if args.action == "query":
        return _query(args, lambda pump: {"clock": pump.read("ReadRTC")})
    when = pump_time(args.to, args.timezone)
    return _write(args, prog, lambda w: w.set_clock(when))


def press_key_main(argv=None):
    prog = "mm-press-key.py"
    p = _parser(prog, "Press pump keys remotely, one KeypadPush each, in order; stops at the "
                      "first key the pump does not ACK.  Presses cannot be read back.")
    p.add_argument("keys", nargs="+", type=str.lower, choices=KEY_NAMES, metavar="KEY",
                   help="one or more of: %s" % " ".join(KEY_NAMES))
    args = options.parse(p, argv)
    return _write(args, prog, lambda w: w.press_keys(args.keys))


def select_profile_main(argv=None):
    prog = "mm-select-profile.py"
    p = _parser(prog, "Query or select the active basal profile (%s); verified with ReadSettings."
                % ", ".join(PATTERN_NAMES))
    p.add_argument("profile", type=str.upper, choices=("QUERY",) + PATTERN_NAMES,
                   metavar="query|" + "|".join(PATTERN_NAMES))
    args = options.parse(p, argv)
    if args.profile == "QUERY":
        return _query(args, lambda pump: {"selected_pattern": _pattern(
            pump.read("ReadSettings")["selected_pattern"])})
    return _write(args, prog, lambda w: w.select_profile(args.profile))


def _pattern(number):
    return PATTERN_NAMES[number] if 0 <= number < len(PATTERN_NAMES) else number


"""python -m decocare.explain [LOGS]: write what a status-quo run found (logs/explain.log) from
the run's logs and pages only; --model prints only the pump model the logs name (bin/common's
run_regress needs it to decode the pages)."""
import argparse
import os

from .. import errors
from ..explain import EXPERIMENTS, explain, model_in
from . import options


def _result(text):
    name, sep, code = text.partition("=")
    if not sep or name not in EXPERIMENTS or not code.isdigit():
        raise argparse.ArgumentTypeError("expected NAME=EXITCODE with NAME one of %s" % ", ".join(EXPERIMENTS))
    return name, int(code)


def _epoch(text):
    """argparse type: host clock as epoch seconds (1970..2100)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not epoch seconds: %r" % text)
    if not 0 <= value < 4102444800:
        raise argparse.ArgumentTypeError("epoch seconds out of range: %r" % text)
    return value


def main(argv=None):
    p = options.Parser(prog="python -m decocare.explain", description=__doc__,
                       formatter_class=options.RawDescription)
    p.add_argument("logs", nargs="?", default="logs", help="the run's logs directory (default logs)")
    p.add_argument("--model", action="store_true", help="print only the pump model the logs name")
    p.add_argument("--port", help="the port the run used")
    p.add_argument("--serial", type=options.serial_arg, help="the pump serial the run used")
    p.add_argument("--emulated", action="store_true", help="the run used the built-in emulated pump")
    p.add_argument("--result", type=_result, action="append", default=[], metavar="NAME=CODE",
                   help="an experiment's exit code (repeat for each)")
    p.add_argument("--window", type=_epoch, nargs=2, metavar=("START", "END"),
                   help="host clock (epoch seconds) before and after the commands experiment")
    args = p.parse_args(argv)
    if not os.path.isdir(args.logs):
        raise errors.BadInput("%s: no such directory (run ./status-quo.sh first)" % args.logs)
    if args.model:
        model = model_in(args.logs)
        if not model:
            raise errors.BadInput("no pump model in %s/session.log or commands.log (run ./status-quo.sh "
                                  "first, or set DECOCARE_MODEL)" % args.logs)
        print(model)
        return 0
    print(explain(args.logs, args.port, args.serial, dict(args.result), args.emulated, args.window), end="")
    return 0

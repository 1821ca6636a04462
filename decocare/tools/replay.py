"""python -m decocare.replay --check FILE.jsonl: read a real USB transcript (JSONL, one USB
operation per line) with decocare's own codec: every host write and stick reply is parsed,
anomalies (desync, NAK, CRC failures, timeouts, zero-length reads) are listed, complete pump
replies are decoded and history pages reassembled and CRC-checked.  To drive a tool with a
transcript instead, give it --port replay://FILE.jsonl."""
import json
import sys
from collections import Counter

from .. import errors
from ..replay import check_file
from . import options


def report(check, out):
    counts = Counter(text.split(":")[0] for _, text in check.anomalies)
    for index, text in check.anomalies:
        print("op %d: %s" % (index, text), file=out)
    if counts:
        print("anomalies: " + ", ".join("%s x%d" % kv for kv in sorted(counts.items())), file=out)
    if check.incomplete:
        print("incomplete ops (not counted): %d writes, %d reads"
              % (check.incomplete["w"], check.incomplete["r"]), file=out)
    for name, value in check.decoded:
        if not isinstance(value, dict) or "raw" not in value:
            print("%s: %s" % (name, json.dumps(value, default=str)), file=out)
    for name, page, data, ok in check.pages:
        print("%s page %d: %s" % (name, page, "CRC16 ok" if ok else "CRC16 BAD"), file=out)
    for opcode, why in check.undecoded:
        print("not decoded 0x%02X: %s" % (opcode, why), file=out)
    print("pump model: %s" % (check.model or "unknown"), file=out)
    print(check.summary(), file=out)


def main(argv=None):
    p = options.Parser(prog="python -m decocare.replay", description=__doc__,
                       formatter_class=options.RawDescription)
    p.add_argument("--check", metavar="FILE.jsonl", required=True, help="transcript to check")
    p.add_argument("--model", type=options.model_arg,
                   help="pump model for decoding when the transcript has no ReadPumpModel")
    p.add_argument("-v", "--verbose", action="count", default=0)
    args = p.parse_args(argv)
    options.setup_logging(args.verbose)
    check = check_file(args.check, model=args.model)
    if not check.ops:
        raise errors.BadInput("%s holds no USB operation: not a transcript" % args.check)
    report(check, sys.stdout)
    return 0

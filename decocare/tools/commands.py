"""python -m decocare.commands PORT SERIAL: read and print everything the pump's model supports
(clock, battery, reservoir, status, settings, profiles, ratios, ...) through a CareLink stick.
Only reads are sent -- never an opcode that is a write on any model.  --doc prints the command
catalogue (docs/commands.md) instead."""
import json
import sys

from . import options


def _text(value):
    """One decoded value on one line."""
    if isinstance(value, dict):
        return ", ".join("%s=%s" % (key, _text(item)) for key, item in value.items())
    if isinstance(value, list):
        return "[%s]" % "; ".join(_text(item) for item in value)
    return str(value)


def show(value):
    """Markdown-ish lines for a decoded value (``--json`` gives the exact values); raw hex
    without its zero padding."""
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if key == "raw" and isinstance(item, str):
                kept = bytes.fromhex(item).rstrip(b"\0").hex()
                item = "%s (then zeros)" % (kept or "00") if kept != item else item
            if isinstance(item, list) and item and isinstance(item[0], dict):
                lines.append("- %s:" % key)
                lines += ["  - %s" % _text(entry) for entry in item]
            else:
                lines.append("- %s: %s" % (key, _text(item)))
        return "\n".join(lines)
    if isinstance(value, list):
        return "\n".join("- %s" % _text(item) for item in value) or "(none)"
    return str(value)


def main(argv=None):
    p = options.parser("python -m decocare.commands", __doc__, positionals=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--doc", action="store_true", help="print the command catalogue (docs/commands.md)")
    args = options.parse(p, argv, serial=False)
    if args.doc:
        from .docs import commands_markdown
        sys.stdout.write(commands_markdown())
        return 0
    if not args.serial:
        p.error("the pump serial is required: --serial SERIAL (the six digits on the back of the pump)")
    with options.open_args(args) as pump:
        result = {"model": str(pump.model), "serial": args.serial}
        result.update(pump.read_all())
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print("# pump %s, model %s" % (args.serial, result.pop("model")))
        result.pop("serial")
        for name, value in result.items():
            print("\n## %s\n%s" % (name, show(value)))
    return 0

"""mm-send-comm.py: send one READ command to the pump, by name or by opcode, and print the reply.

  mm-send-comm.py --serial 208850 ReadRTC
  mm-send-comm.py --serial 208850 0x80 --page 3 --save        (writes ReadHistoryData-page-3.data)
  mm-send-comm.py --serial 208850 ReadGlucoseHistory --params 00000005

Prints JSON: the command, its opcode, the params sent, the reply bytes (hex) and their decoding.
Only reads are sent.  Commands that change the pump are refused before anything is sent --
dosing ones (Bolus, TempBasal, SetSuspend, KeypadPush, ...) have their own tools, which check
the pump first and never send twice.  An opcode is looked up for the pump's model (0x42 is a
read on a 508 and Bolus on later pumps); an opcode decocare does not know is refused too,
since it could be a dosing command.
"""
from .. import commands
from ..errors import BadInput, DecocareError, Refused, Unsupported
from ..pages import page_crc_ok
from . import options, pumpcli


def _opcode(text):
    try:
        value = int(text, 0)
    except ValueError:
        return None
    if not 0 <= value <= 0xFF:
        raise BadInput("opcode %s is not a byte (0x00-0xFF)" % text)
    return value


def _refuse_write(row):
    if row.write or commands.is_write_opcode(row.opcode):
        why = ("it changes insulin delivery" if row.doses else "it changes the pump" if row.write
               else "0x%02X changes the pump on other models" % row.opcode)
        raise Refused("%s (0x%02X) is not sent by mm-send-comm.py: %s; use its own tool "
                      "(see README, 'The tools'); nothing was sent" % (row.name, row.opcode, why))


def main(argv=None):
    p = options.parser("mm-send-comm.py", __doc__)
    p.add_argument("command", metavar="COMMAND",
                   help="a command name (python -m decocare.commands --doc lists them) or an opcode (0x70, 112)")
    p.add_argument("--page", type=lambda t: options.bounded_int(t, 0, 0xFFFFFFFF, "--page"), metavar="N",
                   help="page number, for the page reads (ReadHistoryData …)")
    p.add_argument("--params", metavar="HEX", help="raw parameter bytes, sent as given (instead of --page)")
    p.add_argument("--save", nargs="?", const="", metavar="FILE",
                   help="write the raw reply to FILE (default <Command>.data, pages <Command>-page-N.data)")
    args = options.parse(p, argv)
    opcode = _opcode(args.command)
    raw_params = None
    if args.params is not None:
        try:
            raw_params = bytes.fromhex(args.params)
        except ValueError:
            raise BadInput("--params %r is not hex bytes (e.g. --params 0003)" % args.params)
    if opcode is None:               # a name: refuse a write before the port is even opened
        rows = [row for row in commands.COMMANDS if args.command in (row.name, row.variant_of)]
        if not rows:
            commands.by_name(args.command)          # BadInput: unknown command
        for row in rows:
            _refuse_write(row)
    values = {"page": args.page} if args.page is not None else {}
    if args.save:
        options.writable_file(args.save)
    elif args.save is not None:
        options.writable_dir(".", "--save (the current folder)")
    with options.open_args(args) as pump:
        model = pump.model
        if opcode is None:
            row = commands.resolve(args.command, model)
        else:
            try:
                row = commands.for_opcode(opcode, model)
            except Unsupported as exc:
                raise Unsupported("%s; an unknown command could change delivery, so it is not sent"
                                  % exc) from None
        _refuse_write(row)
        params = commands.encode(row, model, values) if raw_params is None else raw_params
        data = pump.raw(row.name, params=params)
    try:
        decoded = commands.decode(row.name, data, model)
    except (DecocareError, ValueError, IndexError) as exc:   # odd replies are still shown raw
        decoded = {"error": "cannot decode: %s" % exc}
    out = {"command": row.name, "opcode": "0x%02X" % row.opcode, "model": str(model),
           "params": params.hex(), "reply": data.hex(), "decoded": decoded}
    if row.kind == "page":
        out["crc_ok"] = page_crc_ok(data)
    if args.save is not None:
        path = args.save or ("%s-page-%d.data" % (row.name, args.page) if args.page is not None
                             else "%s.data" % row.name)
        with open(path, "wb") as fh:
            fh.write(data)
        out["saved"] = path
    pumpcli.dump(out)
    return 0

"""python -m decocare.scan: print the stick's port (what --port defaults to), --all every
candidate; exit 4 with a one-line hint when there is none."""
from .. import scan
from . import options


def main(argv=None):
    parser = options.Parser(prog="python -m decocare.scan", description=scan.__doc__,
                            formatter_class=options.RawDescription)
    parser.add_argument("--all", action="store_true", help="print every candidate, one per line")
    args = parser.parse_args(argv)
    first = scan.find_port()   # PortError with a hint when nothing is found
    ports = [first] + [p for p in scan.scan() if p != first] if args.all else [first]
    print("\n".join(ports))
    return 0

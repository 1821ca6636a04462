"""python -m decocare.stick PORT: the stick alone (no pump): product info, signal strength and
the radio and USB interface counters, like decocare's stick.py -- a quick check it works."""
from ..link import Link
from ..scan import find_port
from ..stick import Stick
from . import options


def diagnose(stick):
    """The lines it prints (status-quo.sh's stick logs, read back by explain)."""
    lines = []
    info = stick.open()
    for key in ("serial", "product.version", "description", "software.version", "rf.freq"):
        lines.append("%-18s %s" % (key + ":", info[key]))
    lines.append("%-18s %s" % ("interfaces:", ", ".join("%d %s" % i for i in info["interfaces"])))
    lines.append("%-18s %d" % ("signal strength:", stick.signal_strength()))
    for which in ("radio", "usb"):
        stats = stick.interface_stats(which)
        lines.append("%s stats: %s" % (which, " ".join("%s=%d" % kv for kv in stats.items())))
    return lines


def main(argv=None):
    p = options.parser("python -m decocare.stick", __doc__, pump=False, positionals=True)
    args = options.parse(p, argv, serial=False)
    with Link(args.port or find_port()) as link:
        for line in diagnose(Stick(link)):
            print(line)
    return 0

"""USB operations and seconds per read and per history page: decocare's client against the
emulated stick + pump in its real-time mode (spec §8 latencies), printed beside the figures
measured on real captures (spec protocol.md §8).

    python benchmarks/bench_stick.py [--pages 4] [--reads 5] [--poll 0.05]
"""
import argparse
import statistics
import sys
import time
from collections import Counter

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from decocare import commands                       # noqa: E402
from decocare.emulator import Emulator              # noqa: E402
from decocare.link import Link                      # noqa: E402
from decocare.session import Session                # noqa: E402
from decocare.stick import Stick                    # noqa: E402

NAMES = {0x01: "TransmitPacket", 0x03: "ReadStatus", 0x0C: "ReadRadio"}


class CountingLink(Link):
    """Counts writes by stick command so polls and radio reads can be told apart."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.by_op = Counter()

    def write(self, data):
        self.by_op[NAMES.get(data[0], "other")] += 1
        super().write(data)


def measure(link, action, runs):
    """Per run: seconds, USB ops (writes + reads), and the write mix."""
    times, ops, mix = [], [], Counter()
    for i in range(runs):
        before_ops, before_mix = link.writes + link.reads, Counter(link.by_op)
        start = time.monotonic()
        action(i)
        times.append(time.monotonic() - start)
        ops.append(link.writes + link.reads - before_ops)
        mix.update(link.by_op - before_mix)
    return times, ops, {k: v / runs for k, v in mix.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=4, help="history pages to read (default 4)")
    parser.add_argument("--reads", type=int, default=5, help="single-frame reads per command (default 5)")
    parser.add_argument("--poll", type=float, default=0.05, help="ReadStatus poll interval, s (default 0.05)")
    args = parser.parse_args(argv)

    with Emulator(model="523", serial="736868", timing="real", seed=1, weeks=8) as emu:
        link = CountingLink(emu.url)
        stick = Stick(link, poll_interval=args.poll)
        stick.open()
        pump = commands.Pump(Session(stick, "736868"), model="523")
        names = ("ReadPumpModel", "ReadRTC", "ReadBatteryStatus")
        t_read, o_read, m_read = measure(link, lambda i: pump.raw(names[i % len(names)]), args.reads)
        pages = min(args.pages, len(emu.pump.history.pages))
        t_page, o_page, m_page = measure(link, lambda i: pump.history_page(i), pages)

    ms = lambda xs: 1000 * statistics.median(xs)                                   # noqa: E731
    print("emulator timing=real, poll interval %.0f ms, Python %s" % (args.poll * 1000, sys.version.split()[0]))
    print()
    print("%-34s %14s %16s %16s" % ("measure", "decocare (new)", "decocare 0.0.31", "vendor CareLink"))
    print("%-34s %11.0f ms %16s %16s" % ("single-frame read, TX -> reply", ms(t_read), "p50 781 ms", "p50 335 ms"))
    print("%-34s %14.1f %16s %16s" % ("  USB ops per read (w+r)", statistics.mean(o_read), "~8", "~8"))
    print("%-34s %14.1f %16s %16s" % ("  ReadStatus polls per read", m_read.get("ReadStatus", 0), "2-3", "2"))
    print("%-34s %11.0f ms %16s %16s" % ("history page (1024 B), TX -> EOD", ms(t_page), "p50 2529 ms", "p50 2705 ms"))
    print("%-34s %14.1f %16s %16s" % ("  USB ops per page (w+r)", statistics.mean(o_page), "~40", "~30"))
    print("%-34s %14.1f %16s %16s" % ("  ReadStatus polls per page", m_page.get("ReadStatus", 0), "9-10", "~7"))
    print("%-34s %14.1f %16s %16s" % ("  ReadRadio reads per page", m_page.get("ReadRadio", 0), "9-10", "~7"))
    print("%-34s %14.2f %16s %16s" % ("36 pages, estimated s", 36 * statistics.median(t_page), "93.6 (523)", "-"))
    print()
    print("physical lower bound through the stick (spec §8.4): ~2.4 s per page, ~87 s for 36 pages")
    print("reads measured: %d, pages measured: %d" % (len(t_read), len(t_page)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

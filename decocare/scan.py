"""Find the CareLink stick's serial port: the udev names first (/dev/serial/by-id, the
/dev/ttyUSB.Carelink* link of decocare's udev rule), then /sys for systems without udev.

``python -m decocare.scan`` prints the port (what ``--port`` defaults to), ``--all`` every
candidate; exit 4 with a one-line hint when there is none.
"""
import argparse
import glob
import os

from . import cli, errors

VENDOR, PRODUCT = "0a21", "8001"


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def sysfs_ports(sysfs=None):
    """/dev/ttyUSB* of every plugged-in stick whose usb-serial driver is bound, from /sys."""
    sysfs = sysfs or os.environ.get("DECOCARE_SYSFS", "/sys")
    ports = []
    for dev in sorted(glob.glob(os.path.join(sysfs, "bus", "usb", "devices", "*"))):
        if _read(os.path.join(dev, "idVendor")) == VENDOR and _read(os.path.join(dev, "idProduct")) == PRODUCT:
            ports += ["/dev/" + os.path.basename(t) for t in sorted(glob.glob(os.path.join(dev, "*:*", "ttyUSB*")))]
    return ports


def scan(sysfs=None):
    """Every candidate port, best first, without duplicates (a by-id link and its ttyUSB)."""
    found = []
    for pattern in cli.STICK_GLOBS:
        found += sorted(glob.glob(pattern))
    found += sysfs_ports(sysfs)
    seen, ports = set(), []
    for port in found:
        real = os.path.realpath(port)
        if real not in seen:
            seen.add(real)
            ports.append(port)
    return ports


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m decocare.scan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="print every candidate, one per line")
    args = parser.parse_args(argv)
    first = cli.find_port()   # what --port defaults to; PortError with a hint when nothing is found
    ports = [first] + [p for p in scan() if p != first] if args.all else [first]
    print("\n".join(ports))
    return errors.EXIT_OK


if __name__ == "__main__":
    cli.run(main, prog="decocare.scan")

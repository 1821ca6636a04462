"""Find the CareLink stick's serial port: $DECOCARE_PORT, the udev names (/dev/serial/by-id, the
/dev/ttyUSB.Carelink* link of decocare's udev rule), then /sys for systems without udev.

``find_port()`` is what every tool's ``--port`` defaults to; ``scan()`` lists every candidate.
"""
import glob
import os

from .errors import PortError

VENDOR, PRODUCT = "0a21", "8001"
STICK_GLOBS = ("/dev/serial/by-id/*0a21_8001*", "/dev/ttyUSB.Carelink*")


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
    for pattern in STICK_GLOBS:
        found += sorted(glob.glob(pattern))
    found += sysfs_ports(sysfs)
    seen, ports = set(), []
    for port in found:
        real = os.path.realpath(port)
        if real not in seen:
            seen.add(real)
            ports.append(port)
    return ports


def find_port():
    """The CareLink stick's port: $DECOCARE_PORT, else the first udev name, else /sys."""
    env = os.environ.get("DECOCARE_PORT")
    if env:
        return env
    found = scan()
    if found:
        return found[0]
    raise PortError("no CareLink stick found (is it plugged in? run sudo ./insert.sh); "
                    "give --port, e.g. --port /dev/ttyUSB0 or --port emulator://")


if __name__ == "__main__":      # python -m decocare.scan: the command line is decocare/tools/scan.py
    from decocare.tools.registry import launch
    launch("decocare.scan")

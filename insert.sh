#!/usr/bin/env bash
# insert.sh: make the CareLink USB stick (USB 0a21:8001) appear as a serial port on Linux.
#
#   sudo ./insert.sh            load the usb-serial driver for the stick, print its port
#   sudo ./insert.sh --udev     install decocare's udev rule (driver, dialout group,
#                               /dev/ttyUSB.Carelink* link), so plugging in is enough from now on
#   ./insert.sh --dry-run       say what would be done, change nothing (no root needed)
#
# Exit: 0 done (or nothing to do), 1 could not (no stick, not root, not Linux, driver failed),
# 2 bad arguments.  DECOCARE_SYSFS / DECOCARE_UDEV_DIR override /sys and /etc/udev/rules.d (tests).
set -u
VENDOR=0a21
PRODUCT=8001
RULE=80-medtronic-carelink.rules
SYSFS=${DECOCARE_SYSFS:-/sys}
UDEV_DIR=${DECOCARE_UDEV_DIR:-/etc/udev/rules.d}
HERE=$(cd "$(dirname "$0")" && pwd)

dry=""
udev=""
for arg in "$@"; do
  case "$arg" in
    --dry-run|-n) dry=1 ;;
    --udev) udev=1 ;;
    -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "insert.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { echo "insert.sh: $*"; }
fail() { echo "insert.sh: $*" >&2; exit 1; }
act() {  # run a command that changes the system, or only show it with --dry-run
  if [ -n "$dry" ]; then say "would run: $*"; return 0; fi
  say "running: $*"
  "$@"
}

# the USB device directory of every plugged-in stick
sticks() {
  local d
  for d in "$SYSFS"/bus/usb/devices/*; do
    [ -f "$d/idVendor" ] && [ -f "$d/idProduct" ] || continue
    [ "$(cat "$d/idVendor")" = "$VENDOR" ] && [ "$(cat "$d/idProduct")" = "$PRODUCT" ] && echo "$d"
  done
}

# the /dev/ttyUSB* a stick's driver created (none before the driver is bound)
ports() {
  local s t
  for s in $(sticks); do
    for t in "$s"/*:*/ttyUSB*; do
      [ -e "$t" ] && echo "/dev/$(basename "$t")"
    done
  done
}

rule_file() {
  if [ -f "$HERE/decocare/etc/$RULE" ]; then echo "$HERE/decocare/etc/$RULE"; return; fi
  python3 -c "import os, decocare; print(os.path.join(os.path.dirname(decocare.__file__), 'etc', '$RULE'))" 2>/dev/null
}

os=$(uname -s)
[ "$os" = Linux ] || fail "this is $os, not Linux: the CareLink stick needs Linux's usb-serial driver \
(use a Linux machine or a VM with the USB device passed through). Without hardware, try the emulated pump: ./status-quo.sh"

is_root=""
[ "$(id -u)" = 0 ] && is_root=1
ARGS="$*"
need_root() {
  if [ -n "$is_root" ] || [ -n "$dry" ]; then return 0; fi
  fail "$1 needs root: run  sudo $0 $ARGS  (or $0 --dry-run $ARGS to see what it would do)"
}

if [ -n "$udev" ]; then
  need_root "installing the udev rule"
  src=$(rule_file)
  [ -n "$src" ] && [ -f "$src" ] || fail "cannot find $RULE (run from the decocare checkout, or pip install decocare)"
  act install -m 0644 "$src" "$UDEV_DIR/$RULE" || fail "could not copy $src to $UDEV_DIR"
  act udevadm control --reload-rules || fail "udevadm could not reload the rules (is udev running?)"
  act udevadm trigger --attr-match=idVendor=$VENDOR
  say "udev rule ${dry:+would be }installed: $UDEV_DIR/$RULE (the port will be /dev/ttyUSB.Carelink* and group dialout;"
  say "add yourself to dialout once: sudo usermod -aG dialout \$USER, then log in again)"
fi

found=$(sticks)
if [ -z "$found" ]; then
  [ -n "$udev" ] && { say "no stick plugged in now: plug it in, the rule does the rest"; exit 0; }
  fail "no CareLink stick (USB $VENDOR:$PRODUCT) is plugged in: plug it in and run again \
(lsusb should list '$VENDOR:$PRODUCT Medtronic Physio Control Corp.')"
fi
say "stick found: $(echo "$found" | sed "s#^$SYSFS/bus/usb/devices/##" | tr '\n' ' ')"

port=$(ports)
if [ -n "$port" ]; then
  say "the driver is already bound, port: $port (nothing to do)"
else
  need_root "loading the driver"
  if modinfo usb-serial-simple 2>/dev/null | grep -qi "v${VENDOR}p${PRODUCT}"; then
    act modprobe usb-serial-simple || fail "modprobe usb-serial-simple failed (see dmesg)"
  else
    act modprobe usbserial vendor=0x$VENDOR product=0x$PRODUCT \
      || fail "modprobe usbserial failed (see dmesg; on newer kernels the driver is usb-serial-simple)"
  fi
  [ -n "$dry" ] && exit 0
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$(ports)
    [ -n "$port" ] && break
    sleep 0.5
  done
  [ -n "$port" ] || fail "the driver is loaded but no ttyUSB port appeared for the stick (see dmesg; try re-plugging it)"
  say "driver loaded, port: $port"
fi
first=$(echo "$port" | head -n 1)
say "next: python3 -m decocare.stick $first   then   ./status-quo.sh $first <pump serial>"
[ -w "$first" ] || [ -n "$is_root" ] || say "you cannot write $first yet: sudo usermod -aG dialout \$USER (then log in again), or sudo $0 --udev"
exit 0

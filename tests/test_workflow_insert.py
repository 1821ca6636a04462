"""insert.sh on every path a user meets, without root and without a stick: a fake /sys
(DECOCARE_SYSFS), a fake udev rules dir, and fake uname/id/modprobe/modinfo/udevadm on PATH
that record how they were called (modprobe also "binds" the driver by creating the tty)."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULE = ROOT / "decocare" / "etc" / "80-medtronic-carelink.rules"


def _tool(bindir, name, body):
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def box(tmp_path):
    """A fake system: run(args, uid=, os=, stick=, bound=, simple=) -> CompletedProcess."""
    bindir, sysfs, udev, calls = tmp_path / "bin", tmp_path / "sys", tmp_path / "rules.d", tmp_path / "calls"
    for d in (bindir, sysfs / "bus" / "usb" / "devices", udev):
        d.mkdir(parents=True)
    calls.write_text("")

    def run(*args, uid=0, system="Linux", stick=True, bound=False, simple=False):
        devices = sysfs / "bus" / "usb" / "devices"
        other = devices / "1-2"        # an unrelated USB device must be ignored
        other.mkdir(exist_ok=True)
        (other / "idVendor").write_text("046d\n")
        (other / "idProduct").write_text("c52b\n")
        dev = devices / "1-1"
        if stick:
            dev.mkdir(exist_ok=True)
            (dev / "idVendor").write_text("0a21\n")
            (dev / "idProduct").write_text("8001\n")
            if bound:
                (dev / "1-1:1.0" / "ttyUSB0").mkdir(parents=True, exist_ok=True)
        _tool(bindir, "uname", "echo %s" % system)
        _tool(bindir, "id", "echo %d" % uid)
        _tool(bindir, "modprobe", 'echo "modprobe $*" >> %s; mkdir -p %s' % (calls, dev / "1-1:1.0" / "ttyUSB0"))
        _tool(bindir, "modinfo", "echo 'alias: usb:v0A21p8001d*'" if simple else "exit 1")
        _tool(bindir, "udevadm", 'echo "udevadm $*" >> %s' % calls)
        env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]),
                   DECOCARE_SYSFS=str(sysfs), DECOCARE_UDEV_DIR=str(udev))
        return subprocess.run([str(ROOT / "insert.sh")] + list(args), env=env, capture_output=True,
                              text=True, timeout=30)

    run.calls = lambda: calls.read_text().splitlines()
    run.udev = udev
    return run


def test_old_kernel_loads_usbserial_with_the_stick_ids(box):
    res = box()
    assert res.returncode == 0, res.stderr
    assert box.calls() == ["modprobe usbserial vendor=0x0a21 product=0x8001"]
    assert "port: /dev/ttyUSB0" in res.stdout


def test_newer_kernel_uses_usb_serial_simple(box):
    res = box(simple=True)
    assert res.returncode == 0, res.stderr
    assert box.calls() == ["modprobe usb-serial-simple"]


def test_already_bound_changes_nothing(box):
    res = box(bound=True, uid=1000)
    assert res.returncode == 0, res.stderr
    assert "already bound, port: /dev/ttyUSB0" in res.stdout
    assert box.calls() == []


def test_not_root_says_to_use_sudo_and_changes_nothing(box):
    res = box(uid=1000)
    assert res.returncode == 1
    assert "needs root" in res.stderr and "sudo" in res.stderr and "--dry-run" in res.stderr
    assert box.calls() == []


def test_dry_run_without_root_shows_the_command(box):
    res = box("--dry-run", uid=1000)
    assert res.returncode == 0, res.stderr
    assert "would run: modprobe usbserial vendor=0x0a21 product=0x8001" in res.stdout
    assert box.calls() == []


def test_no_stick_plugged_in(box):
    res = box(stick=False)
    assert res.returncode == 1
    assert "no CareLink stick" in res.stderr and "lsusb" in res.stderr
    assert box.calls() == []


def test_not_linux(box):
    res = box(system="Darwin")
    assert res.returncode == 1
    assert "Darwin, not Linux" in res.stderr and "status-quo.sh" in res.stderr
    assert box.calls() == []


def test_udev_installs_the_packaged_rule(box):
    res = box("--udev", stick=False)
    assert res.returncode == 0, res.stderr
    assert (box.udev / RULE.name).read_bytes() == RULE.read_bytes()
    assert "udevadm control --reload-rules" in box.calls()
    assert "plug it in" in res.stdout


def test_udev_dry_run_and_not_root(box):
    res = box("--udev", "--dry-run", uid=1000, stick=False)
    assert res.returncode == 0, res.stderr
    assert not (box.udev / RULE.name).exists() and box.calls() == []
    res = box("--udev", uid=1000, stick=False)
    assert res.returncode == 1 and "needs root" in res.stderr


def test_bad_argument_is_a_usage_error(box):
    res = box("--frobnicate")
    assert res.returncode == 2 and "unknown argument" in res.stderr


def test_help_is_the_header_comment_only(box):
    res = box("--help")
    assert res.returncode == 0 and "sudo ./insert.sh --udev" in res.stdout
    assert res.stdout.rstrip().endswith("(tests).")          # nothing of the script after it
    assert "set -u" not in res.stdout and "VENDOR=" not in res.stdout


def test_rule_matches_the_stick_and_names_the_port():
    text = RULE.read_text()
    assert 'ATTRS{idVendor}=="0a21", ATTRS{idProduct}=="8001"' in text
    assert "ttyUSB.Carelink" in text and "modprobe usbserial vendor=0x0a21 product=0x8001" in text

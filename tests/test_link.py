"""link: any pyserial URL, exact-size reads, drain, one-line port errors, hexdump log."""
import logging
import os
import pty
import subprocess
import sys

import pytest
import serial

from decocare import errors
from decocare.link import Link


def test_registers_our_url_handlers():
    assert "decocare.urlhandler" in serial.protocol_handler_packages


def test_exact_size_read_and_timeout_on_loop():
    with Link("loop://", timeout=0.05) as link:
        link.write(b"\x01\x55\x00" + bytes(61) + b"\x02\x00")
        assert len(link.read(64)) == 64                 # exactly 64, the rest stays queued
        assert link.read(64) == b"\x02\x00"             # fewer only when the timeout runs out
        assert link.read(64) == b""
        assert (link.writes, link.reads) == (1, 3)


def test_drain_drops_stale_answers():
    with Link("loop://", timeout=0.05) as link:
        link.write(bytes(200))
        assert len(link.drain()) == 200
        assert link.read(1) == b""


def test_every_usb_op_is_logged_as_hexdump(caplog):
    with caplog.at_level(logging.INFO, logger="decocare.link"):
        with Link("loop://", timeout=0.05) as link:
            link.write(b"\x04\x00\x00")
            link.read(3)
    text = caplog.text
    assert "usb.write.len: 3\n0000   0x04 0x00 0x00" in text
    assert "usb.read.len: 3\n0000   0x04 0x00 0x00" in text


def test_missing_port_is_one_line_port_error():
    with pytest.raises(errors.PortError) as exc:
        Link("/dev/ttyUSB-no-such-stick")
    assert "no such port" in str(exc.value) and "\n" not in str(exc.value)
    assert exc.value.exit_code == errors.EXIT_PORT


def test_busy_port_is_refused():
    master, slave = pty.openpty()
    path = os.ttyname(slave)
    try:
        with Link(path, timeout=0.05):
            with pytest.raises(errors.PortError) as exc:
                Link(path)
            assert "busy" in str(exc.value)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied(tmp_path):
    master, slave = pty.openpty()
    path = os.ttyname(slave)
    mode = os.stat(path).st_mode
    try:
        os.chmod(path, 0)
        with pytest.raises(errors.PortError) as exc:
            Link(path)
        assert "permission denied" in str(exc.value)
    finally:
        os.chmod(path, mode)
        os.close(master)
        os.close(slave)


def test_unknown_url_scheme_is_a_port_error():
    with pytest.raises(errors.PortError):
        Link("nosuchscheme://x")


def test_stick_cli_prints_diagnostics():
    run = subprocess.run([sys.executable, "-m", "decocare.stick", "emulator://?model=522"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "ComLink II" in run.stdout and "signal strength:" in run.stdout and "radio stats:" in run.stdout


def test_stick_cli_missing_port_one_line():
    run = subprocess.run([sys.executable, "-m", "decocare.stick", "/dev/ttyUSB-no-such-stick"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == errors.EXIT_PORT
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_session_cli_prints_model():
    run = subprocess.run([sys.executable, "-m", "decocare.session",
                          "emulator://?model=523&serial=736868&faults=asleep", "736868"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "model: 523"


@pytest.mark.parametrize("code,words", [(13, "permission denied"), (16, "busy"), (2, "no such port")])
def test_pyserial_errors_become_one_line(monkeypatch, code, words):
    """What pyserial raises for EACCES/EBUSY/ENOENT (as root a real EACCES cannot be provoked)."""
    def refuse(*args, **kwargs):
        raise serial.SerialException(code, "could not open port /dev/ttyUSB0: [Errno %d] %s"
                                     % (code, os.strerror(code)))
    monkeypatch.setattr(serial, "serial_for_url", refuse)
    with pytest.raises(errors.PortError) as exc:
        Link("/dev/ttyUSB0")
    assert words in str(exc.value) and "\n" not in str(exc.value)

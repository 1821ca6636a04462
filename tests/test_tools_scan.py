"""Port discovery without a stick: a fake /sys (DECOCARE_SYSFS) with a bound and an unbound
stick and an unrelated USB device."""
import pytest

from decocare import scan
from decocare.errors import PortError
from decocare.tools import scan as scan_cli


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    devices = tmp_path / "bus" / "usb" / "devices"
    for name, ids, tty in (("1-1", ("0a21", "8001"), "ttyUSB3"), ("1-2", ("046d", "c52b"), "ttyUSB0"),
                           ("2-1", ("0a21", "8001"), None)):
        dev = devices / name
        dev.mkdir(parents=True)
        (dev / "idVendor").write_text(ids[0] + "\n")
        (dev / "idProduct").write_text(ids[1] + "\n")
        if tty:
            (dev / (name + ":1.0") / tty).mkdir(parents=True)
    monkeypatch.setenv("DECOCARE_SYSFS", str(tmp_path))
    monkeypatch.delenv("DECOCARE_PORT", raising=False)
    monkeypatch.setattr(scan, "STICK_GLOBS", ())
    return tmp_path


def test_sysfs_finds_only_the_bound_stick(sysfs):
    assert scan.sysfs_ports() == ["/dev/ttyUSB3"]
    assert scan.scan() == ["/dev/ttyUSB3"]
    assert scan.find_port() == "/dev/ttyUSB3"


def test_udev_names_come_first_and_duplicates_go(sysfs, tmp_path, monkeypatch):
    link = tmp_path / "ttyUSB.Carelink3"
    link.symlink_to("/dev/ttyUSB3")
    monkeypatch.setattr(scan, "STICK_GLOBS", (str(tmp_path / "ttyUSB.Carelink*"),))
    assert scan.scan() == [str(link)]        # the link and the ttyUSB it names are one port


def test_main_prints_the_port_or_fails_with_a_hint(sysfs, capsys, monkeypatch):
    assert scan_cli.main([]) == 0 and capsys.readouterr().out == "/dev/ttyUSB3\n"
    monkeypatch.setenv("DECOCARE_PORT", "emulator://")
    assert scan_cli.main(["--all"]) == 0 and capsys.readouterr().out == "emulator://\n/dev/ttyUSB3\n"
    monkeypatch.delenv("DECOCARE_PORT")
    monkeypatch.setenv("DECOCARE_SYSFS", str(sysfs / "nothing"))
    with pytest.raises(PortError, match="insert.sh"):
        scan_cli.main([])

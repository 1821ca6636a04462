"""download: every page to a file, CRC-checked; lost pages reported, never saved, exit non-zero."""
import hashlib
import subprocess
import sys

import pytest

from decocare import commands, download, errors
from decocare.link import Link
from decocare.session import Session
from decocare.stick import Stick

from test_stick_fakeport import FakeStick, Pump, make_page


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "decocare.download"] + list(args),
                          capture_output=True, text=True, timeout=120)


def test_replayed_download_writes_the_pages_the_real_run_received(transcripts_dir, page_index, tmp_path):
    """analysis/736868/logs/download.log: ReadCurPageNumber then pages 0-35 (spec §5.3: value
    417 -> pages 0..35); the recording holds no model read, hence --model/--no-wake."""
    path = transcripts_dir / "analysis__736868__logs__download.log.jsonl"
    run = run_cli("replay://%s" % path, "736868", "--out", str(tmp_path), "--model", "523", "--no-wake")
    assert run.returncode == 0, run.stderr
    files = sorted(tmp_path.glob("ReadHistoryData-page-*.data"))
    assert len(files) == 36
    by_sha = {p["sha256"]: p for p in page_index}
    for n in range(36):
        data = (tmp_path / ("ReadHistoryData-page-%d.data" % n)).read_bytes()
        entry = by_sha.get(hashlib.sha256(data).hexdigest())
        assert entry is not None and entry["pump"]["serial"] == "736868", n
    assert "page 35: ok" in run.stderr


def test_replay_that_diverges_fails_loudly_and_keeps_only_whole_pages(transcripts_dir, tmp_path):
    """bewest fall-2013: page 5 stalls; the recorded host then gave up on it after one kind-5
    re-send, our client tries once more, which the recording cannot answer: the run stops with
    one line and pages 0-4 stay saved, each whole."""
    path = transcripts_dir / "analysis__bewest-pump__fall-2013__download.log.jsonl"
    run = run_cli("replay://%s" % path, "665455", "--out", str(tmp_path), "--model", "522", "--no-wake")
    assert run.returncode != 0
    assert "does not hold" in run.stderr.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ReadHistoryData-page-%d.data" % n for n in range(5)]


def fake_pump(faults=None, pages=None):
    fake = FakeStick(Pump(pages=pages), faults=faults)
    stick = Stick(Link(fake), clock=fake.clock, sleep=fake.clock.sleep)
    stick.open()
    return fake, commands.Pump(Session(stick, "208850"), model="515")


def test_download_stops_at_the_end_of_history(tmp_path, capsys):
    fake, pump = fake_pump(pages={0: make_page(0), 1: make_page(1), 2: make_page(2)})
    saved, failed = download.download(pump, str(tmp_path))
    assert saved == [0, 1, 2] and not failed
    for n in range(3):
        assert (tmp_path / ("ReadHistoryData-page-%d.data" % n)).read_bytes() == make_page(n)
    assert "no such page (NAK 0x0d): end of history" in capsys.readouterr().err


def test_page_failing_crc_is_reported_and_not_saved(tmp_path, capsys):
    bad = bytearray(make_page(1))
    bad[500] ^= 0x40
    fake, pump = fake_pump(pages={0: make_page(0), 1: bytes(bad), 2: make_page(2)})
    saved, failed = download.download(pump, str(tmp_path))
    assert saved == [0, 2] and list(failed) == [1]
    assert isinstance(failed[1], errors.CRCError)
    assert not (tmp_path / "ReadHistoryData-page-1.data").exists()
    assert not list(tmp_path.glob("*.part"))
    assert "page 1: NOT SAVED" in capsys.readouterr().err


def test_stall_mid_page_is_retried_and_page_is_whole(tmp_path):
    fake, pump = fake_pump(faults={"stall_after": 7})
    saved, failed = download.download(pump, str(tmp_path))
    assert saved == [0, 1] and not failed
    assert (tmp_path / "ReadHistoryData-page-0.data").read_bytes() == make_page(0)


def test_gives_up_when_the_pump_goes_away(tmp_path):
    """ReadCurPageNumber itself gets no answer: the download fails with NoResponse, no files."""
    fake, pump = fake_pump(faults={"kind5": 10 ** 6})
    with pytest.raises(errors.NoResponse):
        download.download(pump, str(tmp_path))
    assert not list(tmp_path.iterdir())
    assert fake.count(0x01) == 3


def test_gives_up_after_consecutive_lost_pages(tmp_path, capsys):
    class Flaky:
        model = commands.Pump(None, model="515").model

        def page_count(self):
            return 36

        def history_page(self, n):
            if n >= 2:
                raise errors.NoResponse("no reply from the pump within 3.0 s")
            return make_page(n)

    saved, failed = download.download(Flaky(), str(tmp_path))
    assert saved == [0, 1]
    assert sorted(failed) == list(range(2, 36))
    assert "giving up" in capsys.readouterr().err


def test_glucose_pages_newest_first():
    class Cgm:
        def read(self, name):
            assert name == "ReadCurGlucosePageNumber"
            return {"page": 6, "glucose": 3, "isig": 0}

    assert download.page_numbers(Cgm(), glucose=True) == [6, 5, 4]


def test_x12_refusing_page_number_reads_32_pages():
    class X12ish:
        model = commands.Pump(None, model="512").model

        def page_count(self):
            raise errors.Refused("refused", code=0x08)

    assert download.page_numbers(X12ish()) == list(range(32))


def test_cli_bad_serial_and_missing_port_are_one_line():
    run = run_cli("/dev/nonexistent-stick", "12345")
    assert run.returncode == errors.EXIT_USAGE and "Traceback" not in run.stderr
    run = run_cli("/dev/nonexistent-stick", "208850", "--no-wake")
    assert run.returncode == errors.EXIT_PORT
    assert len(run.stderr.strip().splitlines()) == 1 and "no such port" in run.stderr

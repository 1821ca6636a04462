"""download: every page the pump reports, CRC-checked, or a loud failure naming what is missing;
a manifest beside the pages; nothing from an earlier run passes for this run's."""
import hashlib
import json
import subprocess
import sys

import pytest

from decocare import commands, download, errors
from decocare.emulator import Emulator
from decocare.link import Link
from decocare.session import Session
from decocare.stick import Stick
from decocare.tools import registry

from test_stick_fakeport import FakeStick, Pump, make_page

SERIAL = "208850"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "decocare.download"] + list(args),
                          capture_output=True, text=True, timeout=120)


def manifest(folder, kind="ReadHistoryData"):
    return json.loads((folder / ("%s.manifest.json" % kind)).read_text())


def test_replayed_download_writes_the_pages_the_real_run_received(transcripts_dir, page_index, tmp_path):
    """analysis/736868/logs/download.log: ReadCurPageNumber then pages 0-35 (spec §5.3: value
    417 -> pages 0..35); the recording holds no model read, hence --model/--no-wake (page reads
    have one meaning on every model, so none is needed)."""
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
    m = manifest(tmp_path)
    assert m["complete"] and m["range"]["reported"] == {"ReadCurPageNumber": 417}
    assert [p["sha256"] for p in m["pages"]] == [
        hashlib.sha256((tmp_path / p["file"]).read_bytes()).hexdigest() for p in m["pages"]]
    assert download.verify(str(tmp_path)) == (True, [])


def test_replay_that_diverges_fails_loudly_and_keeps_only_whole_pages(transcripts_dir, tmp_path):
    """bewest fall-2013: page 5 stalls; the recorded host then gave up on it after one kind-5
    re-send, our client tries once more, which the recording cannot answer: the run stops with
    one line and pages 0-4 stay saved, each whole."""
    path = transcripts_dir / "analysis__bewest-pump__fall-2013__download.log.jsonl"
    run = run_cli("replay://%s" % path, "665455", "--out", str(tmp_path), "--model", "522", "--no-wake")
    assert run.returncode != 0
    assert "does not hold" in run.stderr.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.glob("*.data")) == ["ReadHistoryData-page-%d.data" % n for n in range(5)]


def fake_pump(faults=None, pages=None):
    fake = FakeStick(Pump(pages=pages), faults=faults)
    stick = Stick(Link(fake), clock=fake.clock, sleep=fake.clock.sleep)
    stick.open()
    return fake, commands.Pump(Session(stick, SERIAL), model="515")


def test_unbounded_history_ends_where_the_pump_repeats_no_such_page(tmp_path, capsys):
    """This pump refuses ReadCurPageNumber (NAK 08, as an x12): no range is known, so a page's
    NAK 0x0D ends the history -- only when the pump repeats it."""
    fake, pump = fake_pump(pages={0: make_page(0), 1: make_page(1), 2: make_page(2)})
    report = download.download(pump, str(tmp_path))
    assert report.saved == [0, 1, 2] and not report.failed and report.end == 3
    for n in range(3):
        assert (tmp_path / ("ReadHistoryData-page-%d.data" % n)).read_bytes() == make_page(n)
    assert "no such page (NAK 0x0d, 3 times): end of history" in capsys.readouterr().err
    assert [t[13] for t in fake.transmits].count(0x80) == 3 + download.END_CONFIRM
    assert manifest(tmp_path)["complete"] is True


def test_page_failing_crc_is_reported_and_not_saved(tmp_path, capsys):
    bad = bytearray(make_page(1))
    bad[500] ^= 0x40
    fake, pump = fake_pump(pages={0: make_page(0), 1: bytes(bad), 2: make_page(2)})
    report = download.download(pump, str(tmp_path))
    assert report.saved == [0, 2] and list(report.failed) == [1]
    assert isinstance(report.failed[1], errors.CRCError) and report.exit_code == errors.EXIT_NO_RESPONSE
    assert not (tmp_path / "ReadHistoryData-page-1.data").exists()
    assert not list(tmp_path.glob("*.part"))
    err = capsys.readouterr().err
    assert "page 1: NOT SAVED" in err and "retrying 1 missing page: 1" in err
    m = manifest(tmp_path)
    assert not m["complete"] and m["missing"] == [1]
    assert [p["outcome"] for p in m["pages"][:3]] == ["saved", "missing", "saved"]


def test_stall_mid_page_is_retried_and_page_is_whole(tmp_path):
    fake, pump = fake_pump(faults={"stall_after": 7})
    report = download.download(pump, str(tmp_path))
    assert report.saved == [0, 1] and not report.failed
    assert (tmp_path / "ReadHistoryData-page-0.data").read_bytes() == make_page(0)


def test_gives_up_when_the_pump_goes_away(tmp_path):
    """ReadCurPageNumber itself gets no answer: the download fails with NoResponse, no pages."""
    fake, pump = fake_pump(faults={"kind5": 10 ** 6})
    with pytest.raises(errors.NoResponse):
        download.download(pump, str(tmp_path))
    assert not list(tmp_path.glob("*.data"))
    assert fake.count(0x01) == 3


class Flaky:
    """A pump reporting 36 pages whose pages from ``lost`` on never arrive."""
    model = known_model = commands.get_model("515")

    def __init__(self, lost=2, nak=()):
        self.lost, self.nak, self.asked, self.woken = lost, set(nak), [], 0

    def cur_page_number(self):
        return 35

    def ensure_awake(self):
        self.woken += 1

    def history_page(self, n):
        self.asked.append(n)
        if n in self.nak:
            raise errors.Refused("refused", code=0x08)
        if n >= self.lost:
            raise errors.NoResponse("no reply from the pump within 3.0 s")
        return make_page(n)


def test_lost_pages_wake_the_pump_once_then_the_run_fails_naming_every_missing_page(tmp_path, capsys):
    pump = Flaky(lost=2)
    report = download.download(pump, str(tmp_path))
    assert report.saved == [0, 1] and sorted(report.failed) == list(range(2, 36))
    assert pump.woken == 1 + download.RETRY_ROUNDS          # once per round, then it gives up
    assert report.missing_line().startswith("34 of the 36 history pages the pump reported are missing: 2 3 4")
    err = capsys.readouterr().err
    assert "checking the pump is listening" in err and "more not tried in this round" in err


def test_a_nak_inside_the_reported_range_is_a_missing_page_not_the_end(tmp_path, capsys):
    """The 570-download soak found a NAK mid-history read as the end: 9 pages saved, exit 0.
    Inside the range the pump reported, a NAK is retried after the others, then fails loudly."""
    pump = Flaky(lost=99, nak={9})
    report = download.download(pump, str(tmp_path))
    assert sorted(report.saved) == [n for n in range(36) if n != 9] and list(report.failed) == [9]
    assert report.exit_code == errors.EXIT_REFUSED and report.end is None
    assert pump.asked.count(9) == 1 + download.RETRY_ROUNDS and pump.asked[-1] == 9
    assert "the pump refused it, yet reported it" in capsys.readouterr().err


def test_a_transient_nak_is_healed_by_the_retry(tmp_path):
    class Once(Flaky):
        def history_page(self, n):
            if n == 4 and 4 not in self.asked:
                self.asked.append(n)
                raise errors.Refused("refused", code=0x0D)
            return super().history_page(n)
    report = download.download(Once(lost=99), str(tmp_path))
    assert not report.failed and sorted(report.saved) == list(range(36))


def test_an_unbounded_history_ends_only_where_the_nak_repeats(tmp_path):
    """An x12 tells no range: a one-off NAK at page 4 must not end it; page 10's repeated NAK does."""
    class X12(Flaky):
        model = known_model = commands.get_model("512")

        def cur_page_number(self):
            return None

        def history_page(self, n):
            if (n == 4 and self.asked.count(4) == 0) or n >= 10:
                self.asked.append(n)
                raise errors.Refused("no such page", code=0x0D)
            return super().history_page(n)
    pump = X12(lost=99)
    report = download.download(pump, str(tmp_path))
    assert sorted(report.saved) == list(range(10)) and not report.failed and report.end == 10
    assert pump.asked.count(4) == 2 and pump.asked.count(10) == download.END_CONFIRM
    assert 11 not in pump.asked                      # nothing asked past the end
    assert manifest(tmp_path)["pages"][10]["outcome"] == "end of history"


def test_pages_of_an_earlier_run_never_pass_for_this_runs(tmp_path, capsys):
    """An old page 3 the run cannot read again is set aside; an old page outside the range the
    pump reports now is left, and named in the manifest; the count is this run's pages."""
    (tmp_path / "ReadHistoryData-page-3.data").write_bytes(make_page(99))
    (tmp_path / "ReadHistoryData-page-40.data").write_bytes(make_page(98))
    report = download.download(Flaky(lost=99, nak={3}), str(tmp_path))
    assert 3 not in report.saved and not (tmp_path / "ReadHistoryData-page-3.data").exists()
    assert (tmp_path / "ReadHistoryData-page-3.data.previous").read_bytes() == make_page(99)
    m = manifest(tmp_path)
    assert m["saved"] == 35 and {s["file"] for s in m["stale"]} == {
        "ReadHistoryData-page-40.data", "ReadHistoryData-page-3.data.previous"}


def test_glucose_pages_newest_first():
    class Cgm:
        def read(self, name):
            assert name == "ReadCurGlucosePageNumber"
            return {"page": 6, "glucose": 3, "isig": 0}

    assert download.page_numbers(Cgm(), glucose=True) == [6, 5, 4]


def test_a_stray_nak_on_the_glucose_range_is_asked_again():
    class Cgm:
        asks = 0

        def read(self, name):
            self.asks += 1
            if self.asks == 1:
                raise errors.Refused("pump refused %s (NAK 08)" % name, code=8)
            return {"page": 6, "glucose": 3, "isig": 0}

    cgm = Cgm()
    assert download.page_numbers(cgm, glucose=True) == [6, 5, 4] and cgm.asks == 2


def test_x12_refusing_page_number_reads_32_pages_unbounded():
    class X12ish:
        model = commands.get_model("512")

        def cur_page_number(self):
            return None

    plan = download.plan(X12ish())
    assert plan.pages == list(range(32)) and not plan.bounded


def test_cli_bad_serial_and_missing_port_are_one_line():
    run = run_cli("/dev/nonexistent-stick", "12345")
    assert run.returncode == errors.EXIT_USAGE and "Traceback" not in run.stderr
    run = run_cli("/dev/nonexistent-stick", SERIAL, "--no-wake")
    assert run.returncode == errors.EXIT_PORT
    assert len(run.stderr.strip().splitlines()) == 1 and "no such port" in run.stderr


def cli(argv, capsys):
    with pytest.raises(SystemExit) as done:
        registry.launch("decocare.download", argv)
    return done.value.code, capsys.readouterr().err


def test_cli_unwritable_out_is_refused_before_the_pump_is_touched(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with Emulator(model="523", serial=SERIAL) as emu:
        code, err = cli([emu.url, SERIAL, "--out", str(blocker / "sub")], capsys)
        assert code == errors.EXIT_USAGE and "nothing was sent" in err and len(err.splitlines()) == 1
        assert emu.ledger == []                        # the pump was never touched


def test_cli_exits_non_zero_naming_the_missing_pages(tmp_path, capsys):
    """The pump says it has pages 0..7 (ReadCurPageNumber) but refuses 4..7: exit 6, each named."""
    pages = Emulator(model="523", serial=SERIAL).pump.history.pages[:4]
    seed = tmp_path / "seed"
    seed.mkdir()
    for n, page in enumerate(pages):
        (seed / ("ReadHistoryData-page-%d.data" % n)).write_bytes(page)
    out = tmp_path / "out"
    with Emulator(model="523", serial=SERIAL, pages=str(seed), cur_page=7) as emu:
        code, err = cli([emu.url, SERIAL, "--out", str(out)], capsys)
    assert code == errors.EXIT_REFUSED
    assert "4 of the 8 history pages the pump reported are missing: 4 5 6 7" in err.splitlines()[-1]
    assert sorted(p.name for p in out.glob("*.data")) == ["ReadHistoryData-page-%d.data" % n for n in range(4)]
    assert manifest(out)["missing"] == [4, 5, 6, 7]

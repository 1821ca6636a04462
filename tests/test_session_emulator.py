"""The client stack against the emulated stick + pump (emulator://, fast timing): pages come out
byte-identical whatever faults happen on the way, and a write is transmitted exactly once --
the emulator's ledger says what the pump actually executed."""
import pytest

from decocare import commands, errors, history
from decocare.emulator import Emulator
from decocare.link import Link
from decocare.session import Session
from decocare.stick import Stick
from decocare.tools import download as download_cli

from conftest import shared_path


def open_session(emu):
    stick = Stick(Link(emu.url))
    stick.open()
    return stick, Session(stick, emu.pump.serial)


@pytest.mark.parametrize("faults", [None, "corrupt=0.15,stall=0.1,timeout=0.1,late_usb=0.05,seed=7"])
def test_download_cli_pages_are_the_emulators_pages(tmp_path, faults):
    with Emulator(model="523", serial="736868", seed=3, weeks=6, faults=faults) as emu:
        code = download_cli.main([emu.url, "736868", "--out", str(tmp_path)])
        pages = emu.pump.history.pages
        saved = sorted(tmp_path.glob("ReadHistoryData-page-*.data"))
        assert len(pages) >= 2
        for path in saved:
            n = int(path.stem.rsplit("-", 1)[1])
            assert path.read_bytes() == pages[n], n           # never a damaged page
        if code == 0:
            assert len(saved) == len(pages)
        if faults:
            assert sum(emu.fault_counts.values()) > 0


def test_glucose_download(tmp_path, page_index):
    """A 522 serving its real glucose pages (578398, from ../shared) next to its history."""
    seeded = tmp_path / "pump"
    seeded.mkdir()
    glucose = [p for p in page_index if p["kind"] == "glucose" and p["pump"]["serial"] == "578398"
               and p["condition"] == "complete"]
    assert glucose
    for p in glucose:
        n = int(p["sources"][0]["path"].rsplit("-", 1)[1].split(".")[0])
        (seeded / ("ReadGlucoseHistory-page-%d.data" % n)).write_bytes(
            shared_path("fixtures", "pages", p["bin"]).read_bytes())
    (seeded / "ReadHistoryData-page-0.data").write_bytes(history.build_pages([], "522")[0])
    out = tmp_path / "out"
    with Emulator(model="522", serial="578398", pages=str(seeded)) as emu:
        assert download_cli.main([emu.url, "578398", "--glucose", "--out", str(out)]) == 0
        saved = sorted(out.glob("ReadGlucoseHistory-page-*.data"))
        assert len(saved) == min(len(emu.pump.glucose), max(emu.pump.glucose) + 1)
        for path in saved:
            assert path.read_bytes() == emu.pump.glucose[int(path.stem.rsplit("-", 1)[1])]


def test_sleeping_pump_is_woken_once():
    with Emulator(model="515", serial="208850", faults="asleep") as emu:
        stick, session = open_session(emu)
        data = session.wake(commands.by_name("ReadPumpModel"), commands.by_name("PowerControl"),
                            commands.params("PowerControl", "515", minutes=10))
        assert commands.decode("ReadPumpModel", data, None) == "515"
        assert [e["op"] for e in emu.ledger].count("PowerControl") == 1


TEMP = commands.by_name("TempBasal")


@pytest.mark.parametrize("fault,executed", [("lost_ack", 1), ("timeout", 0), ("drop_args", 0)])
def test_write_unknown_outcome_is_uncertain_sent_once(fault, executed):
    with Emulator(model="523", serial="736868") as emu:
        stick, session = open_session(emu)
        emu.force(fault)
        with pytest.raises(errors.Uncertain):
            session.execute(TEMP, commands.params("TempBasal", "523", rate=2.0, duration=60))
        assert stick.transmits == 1
        assert len(emu.ledger.deliveries("TempBasal")) == executed
        assert emu.fault_counts[fault] == 1
        # the next read starts clean and shows what really happened
        value = commands.Pump(session, model="523").read("ReadBasalTemp")
        assert (value["rate"] == 2.0) == bool(executed)


def test_write_late_usb_answer_never_resends():
    with Emulator(model="523", serial="736868") as emu:
        stick, session = open_session(emu)
        emu.force("late_usb")
        try:
            session.execute(TEMP, commands.params("TempBasal", "523", rate=1.0, duration=30))
        except errors.Uncertain:
            pass
        assert stick.transmits == 1
        assert len(emu.ledger.deliveries("TempBasal")) <= 1


def test_write_refused_is_refused():
    with Emulator(model="523", serial="736868") as emu:
        stick, session = open_session(emu)
        emu.force("nak")
        with pytest.raises(errors.Refused):
            session.execute(TEMP, commands.params("TempBasal", "523", rate=2.0, duration=60))
        assert stick.transmits == 1 and not emu.ledger.deliveries("TempBasal")


@pytest.mark.parametrize("fault", ["corrupt", "stall", "timeout", "late_usb"])
def test_read_recovers_from_each_fault(fault):
    with Emulator(model="523", serial="736868", seed=2) as emu:
        stick, session = open_session(emu)
        pump = commands.Pump(session, model="523")
        emu.force(fault)
        assert pump.history_page(0) == emu.pump.history.pages[0]
        assert emu.fault_counts[fault] == 1


def test_download_wakes_a_sleeping_pump_even_when_the_model_is_given(tmp_path):
    with Emulator(model="515", serial="208850", faults="asleep", seed=4) as emu:
        assert download_cli.main([emu.url, "208850", "--model", "515", "--out", str(tmp_path)]) == 0
        assert [e["op"] for e in emu.ledger].count("PowerControl") == 1
        assert len(list(tmp_path.glob("*.data"))) == len(emu.pump.history.pages)

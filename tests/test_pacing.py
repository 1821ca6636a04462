"""The client paced by what it observes, and the pump's radio window kept across runs.

Pacing runs on the scripted fake stick (virtual clock; replies at the spec's times: a single
frame ~130 ms after the TransmitPacket, a page's first frame ~360 ms then one every ~145 ms):
after a few replies each poll goes out when its chunk is due, a page takes its last frame's
arrival plus a poll, at most three frames per ReadRadio and the last frame alone, and an
answer later than expected is still polled for (backing off), never re-sent.

The radio window (``radiowindow.RadioWindow``): the file is optional (missing, corrupt, unwritable
all mean "not known"), a lapsed window is woken at once (no failed probe), an open one is not,
a window that would close during the next command is renewed first, and a write is still sent
exactly once with the model still the pump's own answer.
"""
import json
import os

import pytest

from decocare import commands, errors, frames
from decocare.connect import open_pump
from decocare.emulator import Emulator
from decocare.link import Link
from decocare.radiowindow import CLOSING, LAPSED, OPEN, UNKNOWN, RadioWindow, state_dir
from decocare.session import Session
from decocare.stick import Stick, boundaries

from test_stick_fakeport import FakeStick, Pump, make_page

MODEL = commands.by_name("ReadPumpModel")
PAGE = commands.by_name("ReadHistoryData")
POWER = commands.by_name("PowerControl")
TEMP = commands.by_name("TempBasal")
ON = commands.params("PowerControl", "515", minutes=10)


def rig(pump=None, window=None):
    fake = FakeStick(pump or Pump(pages={n: make_page(n) for n in range(8)}))
    stick = Stick(Link(fake), clock=fake.clock, sleep=fake.clock.sleep)
    stick.open()
    return fake, stick, Session(stick, "208850", window=window)


def timed(fake, action):
    """(virtual seconds, stick commands written, ReadRadio sizes asked) of one action."""
    t, n = fake.clock(), len(fake.writes)
    action()
    sent = fake.writes[n:]
    return fake.clock() - t, sent, [frames.parse_read_radio(w) for w in sent if w[0] == 0x0C]


def test_chunk_plan_reads_the_last_frame_alone():
    assert boundaries(16) == [3, 6, 9, 12, 15, 16]
    assert boundaries(1) == [1] and boundaries(3) == [3] and boundaries(32)[-2:] == [30, 32]


def test_single_reads_settle_on_one_poll_when_the_reply_is_due():
    fake, stick, session = rig()
    runs = [timed(fake, lambda: session.execute(MODEL)) for _ in range(12)]
    for took, sent, sizes in runs[-4:]:
        assert [w[0] for w in sent] == [0x01, 0x03, 0x0C]       # TX, one poll, one read
        assert 0.13 <= took <= 0.13 + 0.003                     # the fake's reply time + <3 ms
    first = stick.pacer.first[(False, False, False)]
    assert first.lo < 0.13 <= first.hi <= 0.133


def test_pages_settle_on_thirty_usb_operations_and_the_last_frame_alone():
    fake, stick, session = rig()
    runs = [timed(fake, lambda: session.execute(PAGE, bytes([n % 8]))) for n in range(10)]
    last_frame = 0.36 + 15 * 0.145
    for took, sent, sizes in runs:
        assert all(s <= 14 + 3 * 64 for s in sizes)             # one to three frames per read
    for took, sent, sizes in runs[-4:]:
        assert 2 * len(sent) <= 30                              # writes + their answers
        assert sizes[-1] == 14 + 64                             # the 16th frame alone
        assert last_frame <= took <= last_frame + 0.006
    assert fake.count(0x01) == 10


def test_a_reply_later_than_expected_is_polled_for_not_resent():
    fake, stick, session = rig()
    for _ in range(8):
        session.execute(MODEL)
    fake.faults["kind5"] = 1                    # the next reply: kind 5 at 0.6 s, not 0.13 s
    took, sent, _ = timed(fake, lambda: pytest.raises(errors.NoResponse, session.execute, MODEL,
                                                      attempts=1))
    assert [w[0] for w in sent].count(0x01) == 1     # one TransmitPacket for that read
    polls = [w for w in sent if w[0] == 0x03]
    assert 5 <= len(polls) <= 16                 # backed off: 2, 4, 8 ... ms, then every 50 ms
    assert took <= 0.6 + 0.05 + 0.01


def test_a_write_is_paced_but_sent_once():
    fake, stick, session = rig()
    assert session.execute(TEMP, commands.params("TempBasal", "515", rate=1.0, duration=30)) == b""
    assert [t[13] for t in fake.transmits] == [0x4C] and session.writes_sent == 1


# --- the radio window ----------------------------------------------------------------------

class WallClock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_window_file_missing_corrupt_unwritable_is_unknown(tmp_path):
    clock = WallClock()
    path = tmp_path / "w.json"
    window = RadioWindow("208850", path=str(path), clock=clock)
    assert window.state() == (UNKNOWN, None)
    path.write_text("{not json")
    assert window.state() == (UNKNOWN, None)
    path.write_text(json.dumps({"208850": {"on": "x"}, "other": 1}))
    assert window.state() == (UNKNOWN, None)
    window.woke(10, (2.0, 1.0))                  # overwrites the bad record, keeps the others
    data = json.loads(path.read_text())
    assert data["other"] == 1 and data["208850"]["minutes"] == 10
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    stuck = RadioWindow("208850", path=str(blocked / "w.json"), clock=clock)
    stuck.woke(10)                               # cannot be written: no error
    assert stuck.state() == (UNKNOWN, None)


def test_window_states_follow_the_clock(tmp_path):
    clock = WallClock()
    window = RadioWindow("208850", path=str(tmp_path / "w.json"), clock=clock)
    window.woke(10, (0.5, 0.0))                  # ACK seen between 0.5 s ago and now
    state, left = window.state()
    assert state == OPEN and 599 <= left <= 600
    assert window.state(need=599.8)[0] == CLOSING
    clock.t += 599.7
    assert window.state()[0] == UNKNOWN          # may have closed: the probe will tell
    clock.t += 1
    assert window.state() == (LAPSED, 0.0)
    clock.t -= 10_000                            # the clock went back: the record is useless
    assert window.state() == (UNKNOWN, None)
    window.off()
    assert window.state()[0] == LAPSED
    window.forget()
    assert window.state() == (UNKNOWN, None)


def test_state_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DECOCARE_STATE_DIR", str(tmp_path))
    assert state_dir() == str(tmp_path)
    monkeypatch.delenv("DECOCARE_STATE_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/7")
    assert state_dir() == "/run/user/7/decocare"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert state_dir().endswith(os.path.join(".cache", "decocare"))


def test_the_tests_never_touch_the_users_window_file():
    assert os.environ["DECOCARE_STATE_DIR"] and os.path.isdir(os.environ["DECOCARE_STATE_DIR"])
    assert RadioWindow("1").path.startswith(os.environ["DECOCARE_STATE_DIR"])


def window_rig(tmp_path, asleep, record=None):
    fake = FakeStick(Pump(asleep=asleep))
    window = RadioWindow("208850", path=str(tmp_path / "w.json"), clock=fake.clock)
    if record:
        record(window, fake)
    stick = Stick(Link(fake), clock=fake.clock, sleep=fake.clock.sleep)
    stick.open()
    return fake, window, Session(stick, "208850", window=window)


def opcodes(fake):
    return [t[13] for t in fake.transmits]


def lapsed(window, fake):
    window.woke(10)
    fake.clock.t += 601


def test_lapsed_window_wakes_at_once_without_a_failed_probe(tmp_path):
    fake, window, session = window_rig(tmp_path, asleep=True, record=lapsed)
    data = session.wake(MODEL, POWER, ON)
    assert commands.decode("ReadPumpModel", data, None) == "515"
    assert opcodes(fake) == [0x5D, 0x8D]
    state, left = window.state()
    assert state == OPEN and 580 < left <= 600


def test_unknown_window_probes_then_wakes_and_remembers(tmp_path):
    fake, window, session = window_rig(tmp_path, asleep=True)
    session.wake(MODEL, POWER, ON)
    assert opcodes(fake) == [0x8D, 0x5D, 0x8D]
    assert window.state()[0] == OPEN


def test_open_window_is_not_woken(tmp_path):
    fake, window, session = window_rig(tmp_path, asleep=False, record=lambda w, f: w.woke(10))
    session.wake(MODEL, POWER, ON)
    assert opcodes(fake) == [0x8D]


def test_window_recorded_open_but_pump_silent_is_woken_and_the_record_replaced(tmp_path):
    fake, window, session = window_rig(tmp_path, asleep=True, record=lambda w, f: w.woke(10))
    session.wake(MODEL, POWER, ON)
    assert opcodes(fake) == [0x8D, 0x5D, 0x8D] and window.state()[0] == OPEN


def closing(window, fake):
    window.woke(10)
    fake.clock.t += 600 - 3.0                    # 3 s left: a page (~2.5 s + 2 s margin) does not fit


def test_window_closing_is_renewed_before_a_command_that_would_outlast_it(tmp_path):
    fake, window, session = window_rig(tmp_path, asleep=False, record=closing)
    session.wake(MODEL, POWER, ON)               # a single read fits in the 3 s: no renewal yet
    assert opcodes(fake) == [0x8D]
    assert session.execute(PAGE, b"\x00", validate=None) == fake.pump.pages[0]
    assert opcodes(fake) == [0x8D, 0x5D, 0x80]   # renewed, then the page, once
    assert window.state()[0] == OPEN


def test_renewal_before_a_write_keeps_it_exactly_once(tmp_path):
    fake, window, session = window_rig(tmp_path, asleep=False, record=closing)
    session.wake(MODEL, POWER, ON)
    session.execute(TEMP, commands.params("TempBasal", "515", rate=1.0, duration=30))
    assert opcodes(fake) == [0x8D, 0x5D, 0x4C]
    assert [op for op, _ in fake.pump.executed].count(0x4C) == 1
    assert session.writes_sent == 1              # the PowerControl only powered the radio


def test_no_renewal_without_a_wake_plan(tmp_path):
    """A session that was never asked to wake the pump (--no-wake, a replay) sends no
    PowerControl of its own, whatever the file says."""
    fake, window, session = window_rig(tmp_path, asleep=False, record=lapsed)
    session.execute(MODEL)
    assert opcodes(fake) == [0x8D]


def test_open_pump_remembers_the_window_and_keeps_the_model_contract():
    with Emulator(model="523", serial="604021", faults="asleep") as emu:
        with open_pump(emu.url, "604021") as pump:
            assert pump.model.number == "523"
        assert [e["op"] for e in emu.ledger] == ["PowerControl", "ReadPumpModel"]
        assert RadioWindow("604021").state()[0] == OPEN
        # a second run: the window is open and remembers the model: the first read is the probe
        with open_pump(emu.url, "604021") as pump:
            pump.read("ReadRTC")
            assert pump.model.number == "523"
        assert [e["op"] for e in emu.ledger][2:] == ["ReadRTC"]
        with pytest.raises(errors.ModelMismatch):       # a claim that disagrees: the pump is asked
            with open_pump(emu.url, "604021", model="522"):
                pass
        assert [e["op"] for e in emu.ledger][3:] == ["ReadPumpModel"]
        RadioWindow("604021").off()                    # known off: woken at once, no probe first
        with open_pump(emu.url, "604021"):
            pass
        assert [e["op"] for e in emu.ledger][-2:] == ["PowerControl", "ReadPumpModel"]


def test_a_wake_that_gets_no_answer_is_not_repeated_before_every_command(tmp_path):
    """Out of range with a window recorded lapsed: one PowerControl, then the probe fails; the
    record is dropped, so the next command does not send another ~17 s wake-up."""
    fake, window, session = window_rig(tmp_path, asleep=True, record=lapsed)
    fake.faults["kind5"] = 99
    with pytest.raises(errors.NoResponse):
        session.wake(MODEL, POWER, ON)
    assert opcodes(fake).count(0x5D) == 1 and window.state() == (UNKNOWN, None)
    with pytest.raises(errors.NoResponse):
        session.execute(MODEL)
    assert opcodes(fake).count(0x5D) == 1


# --- the model remembered with the window -------------------------------------------------------

def _woken(emu, serial):
    """One run that wakes the asleep emulator: the window and its model are then remembered."""
    with open_pump(emu.url, serial) as pump:
        assert pump.model.number == emu.pump.model.number
    rec = RadioWindow(serial, port=emu.url).record()
    assert rec["model"] == emu.pump.model.number and rec["port"] == emu.url
    return len(emu.ledger)


def test_a_remembered_model_whose_pump_went_quiet_is_woken_and_asked_again():
    """The window said open but the pump does not answer (its radio went off): the first read
    gets no answer, then PowerControl, the model read again, and the read again -- once each."""
    with Emulator(model="523", serial="604021", faults="asleep") as emu:
        n = _woken(emu, "604021")
        emu.pump.sleep()
        with open_pump(emu.url, "604021") as pump:
            assert pump.read("ReadRTC")
        assert [e["op"] for e in emu.ledger][n:] == ["PowerControl", "ReadPumpModel", "ReadRTC"]
        assert RadioWindow("604021", port=emu.url).record()["model"] == "523"


def test_a_write_is_never_the_probe():
    """First command after a remembered model is a write: the model read goes first."""
    with Emulator(model="523", serial="604021", faults="asleep") as emu:
        n = _woken(emu, "604021")
        with open_pump(emu.url, "604021") as pump:
            pump.write("TempBasal", commands.params("TempBasal", "523", rate=1.0, duration=30))
        assert [e["op"] for e in emu.ledger][n:] == ["ReadPumpModel", "TempBasal"]


def test_a_remembered_model_the_pump_contradicts_stops_before_the_command():
    """Only an emulator can put another model behind the same serial and port; were it so, a
    wake-up finds it out and nothing model-dependent is sent."""
    with Emulator(model="523", serial="604021", faults="asleep") as emu:
        n = _woken(emu, "604021")
        window = RadioWindow("604021", port=emu.url)
        rec = json.load(open(window.path))["604021"]
        window._save(dict(rec, model="522"))
        emu.pump.sleep()
        with pytest.raises(errors.ModelMismatch, match="522"):
            with open_pump(emu.url, "604021") as pump:
                pump.read("ReadSettings")
        assert [e["op"] for e in emu.ledger][n:] == ["PowerControl", "ReadPumpModel"]


def test_the_model_is_remembered_only_for_its_port_window_and_emulator(tmp_path):
    path = str(tmp_path / "w.json")
    clock = [1000.0]
    here = RadioWindow("1", path=path, clock=lambda: clock[0], port="/dev/ttyUSB0")
    here.remember_model("523")
    assert here.model() is None                          # no window recorded: nothing kept
    here.woke(10)
    here.remember_model("523")
    assert here.model() == "523"
    assert RadioWindow("1", path=path, clock=lambda: clock[0], port="/dev/ttyUSB1").model() is None
    assert RadioWindow("1", path=path, clock=lambda: clock[0]).model() is None
    assert RadioWindow("2", path=path, clock=lambda: clock[0], port="/dev/ttyUSB0").model() is None
    clock[0] += 600 - 3                                  # closing: not open for 5 s more
    assert here.model() is None
    clock[0] -= 100
    here.woke(10)                                        # a new window: the model is asked again
    assert here.model() is None
    here.remember_model("523")
    here.forget()
    assert here.model() is None
    with Emulator(model="522", serial="604022", faults="asleep") as emu:
        _woken(emu, "604022")
    with Emulator(model="523", serial="604022") as emu:    # a new emulated pump, same serial
        assert RadioWindow("604022", port=emu.url).record() is None


def test_the_session_tool_asks_the_pump_even_when_the_model_is_remembered(capsys):
    """``python -m decocare.session`` exists to find out whether the pump answers: it never
    takes the window's word for it."""
    from decocare.tools import session as session_tool
    with Emulator(model="523", serial="604021", faults="asleep") as emu:
        n = _woken(emu, "604021")
        assert session_tool.main([emu.url, "604021"]) == 0
        assert "model: 523" in capsys.readouterr().out
        assert [e["op"] for e in emu.ledger][n:] == ["ReadPumpModel"]


def test_a_contradicted_model_before_a_write_is_refused_not_uncertain(tmp_path):
    """The write flow's first command is the write itself (--max-basal: no ReadSettings): the
    model read goes first and, contradicting the window, ends the flow as refused, nothing
    sent -- never as a write whose outcome is unknown."""
    from decocare import dosing
    from decocare.journal import Journal
    with Emulator(model="523", serial="604021", faults="asleep") as emu:
        n = _woken(emu, "604021")
        window = RadioWindow("604021", port=emu.url)
        window._save(dict(json.load(open(window.path))["604021"], model="522"))
        with open_pump(emu.url, "604021") as pump:
            writer = dosing.Writer(pump, max_basal=2.0, journal=Journal("604021", str(tmp_path / "w")))
            result = writer.temp_basal(rate=1.0, duration=30)
        assert result.outcome == "refused" and not result.sent and "522" in result.reason
        assert [e["op"] for e in emu.ledger][n:] == ["ReadPumpModel"]
        assert not (tmp_path / "w").exists()                # nothing journaled: nothing sent

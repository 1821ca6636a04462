"""Session over the scripted fake stick: reads retry within bounds, writes go out exactly once
and every unclear outcome is ``Uncertain`` (spec protocol.md §7.3)."""
from types import SimpleNamespace

import pytest

from decocare import errors, frames, pages
from decocare.link import Link
from decocare.session import Session
from decocare.stick import Stick

from test_stick_fakeport import FakeStick, Pump, make_page


def cmd(name, opcode, frames_=1, reply_size=64, retries=2, button=0, write=False):
    """A command row as the session contract describes it (commands.COMMANDS rows match)."""
    return SimpleNamespace(name=name, opcode=opcode, frames=frames_, reply_size=reply_size,
                           retries=retries, button=button, write=write)


MODEL = cmd("ReadPumpModel", 0x8D)
PAGE = cmd("ReadHistoryData", 0x80, frames_=2, reply_size=1024)
POWER = cmd("PowerControl", 0x5D, frames_=0, reply_size=0, retries=0, button=0x55)
TEMP = cmd("TempBasal", 0x4C, frames_=1, reply_size=0, retries=0, write=True)


def page_crc(data):
    if not pages.page_crc_ok(data):
        raise errors.CRCError("page CRC16 mismatch")


def rig(faults=None, pump=None):
    fake = FakeStick(pump or Pump(), faults=faults)
    stick = Stick(Link(fake), clock=fake.clock, sleep=fake.clock.sleep)
    stick.open()
    return fake, stick, Session(stick, "208850")


def test_read_single_frame():
    fake, stick, session = rig()
    data = session.execute(MODEL)
    assert data[:4] == b"\x03515" and len(data) == 64
    assert fake.count(0x01) == 1
    # the reply came from polling, not from sleeping: ~130 ms of virtual time after the TX
    assert fake.clock() < 1.0


def test_read_page_multi_frame_crc_checked():
    fake, stick, session = rig()
    data = session.execute(PAGE, b"\x01", validate=page_crc)
    assert data == make_page(1)
    assert fake.count(0x01) == 1
    assert fake.radio_reads >= 2        # the page arrived in several chunks, concatenated


def test_read_nak_is_refused_with_code_and_not_retried():
    fake, stick, session = rig()
    with pytest.raises(errors.Refused) as exc:
        session.execute(PAGE, b"\x07", validate=page_crc)
    assert exc.value.code == 0x0D
    assert fake.count(0x01) == 1


@pytest.mark.parametrize("faults", [
    {"kind5": 1},
    {"data_crc": 1},
    {"header_crc": 1},
    {"tx_nak": True},
    {"stick_nak": 1},
])
def test_read_recovers_from_one_fault(faults):
    fake, stick, session = rig(faults)
    assert session.execute(MODEL)[:4] == b"\x03515"
    assert fake.count(0x01) <= 2


def test_read_recovers_from_a_stall_mid_page():
    fake, stick, session = rig({"stall_after": 5})
    assert session.execute(PAGE, b"\x00", validate=page_crc) == make_page(0)
    assert fake.count(0x01) == 2


def test_read_corrupt_chunk_mid_page_is_not_returned():
    fake, stick, session = rig({"data_crc": 2})
    assert session.execute(PAGE, b"\x00", validate=page_crc) == make_page(0)
    assert fake.count(0x01) == 2


def test_read_gives_up_after_bounded_attempts():
    fake, stick, session = rig({"kind5": 99})
    with pytest.raises(errors.NoResponse) as exc:
        session.execute(MODEL)
    assert "3 attempts" in str(exc.value)
    assert fake.count(0x01) == 3


def test_page_failing_crc16_is_never_returned():
    bad = bytearray(make_page(0))
    bad[100] ^= 1
    fake, stick, session = rig(pump=Pump(pages={0: bytes(bad)}))
    with pytest.raises(errors.CRCError):
        session.execute(PAGE, b"\x00", validate=page_crc)
    assert fake.count(0x01) == 3


def test_zero_byte_reads_then_late_answer_no_rewrite():
    """The stick answers a ReadStatus 1.2 s late: the client keeps reading the same answer."""
    fake, stick, session = rig({"late": {0x03: 1.2}})
    assert session.execute(MODEL)[:4] == b"\x03515"
    assert stick.late_answers == 1
    assert fake.count(0x01) == 1
    assert stick.resyncs == 0


def test_stale_answer_at_open_is_drained():
    fake = FakeStick(faults={"stale": frames.encode_interface_stats() + bytes(28)})
    stick = Stick(Link(fake), clock=fake.clock, sleep=fake.clock.sleep)
    assert stick.open()["description"] == "ComLink II"


def test_desync_answer_too_late_forces_resync_before_next_command():
    """A ReadStatus answer arrives after the client gave up on it: the next exchange would read
    it; the stick re-synchronises (drain + ProductInfo) instead of reading one step behind."""
    fake, stick, session = rig({"late": {0x03: 9.0}})
    assert session.execute(MODEL)[:4] == b"\x03515"
    assert stick.resyncs >= 1
    assert fake.count(0x01) == 2


# --- writes: exactly one TransmitPacket, unclear -> Uncertain ------------------------------------

def test_write_ack():
    fake, stick, session = rig()
    assert session.execute(TEMP, b"\x00\x50\x02") == b""
    assert fake.count(0x01) == 1
    assert fake.pump.executed == [(0x4C, b"\x00\x50\x02")]


def test_write_nak_is_refused():
    fake, stick, session = rig()
    with pytest.raises(errors.Refused):
        session.execute(cmd("Bolus", 0x42, write=True, reply_size=0, retries=0), b"\x10")
    assert fake.count(0x01) == 1


@pytest.mark.parametrize("faults", [
    {"kind5": 1},
    {"execute_then_timeout": True},
    {"data_crc": 1},
    {"header_crc": 1},
    {"tx_nak": True},
    {"stick_nak": 3},                   # the stick keeps refusing the polls
    {"late": {0x03: 9.0}},              # the status answer never comes in time: desync
    {"late": {0x01: 9.0}},              # the TransmitPacket's own USB answer is missing
    {"silent": {0x0C}},                 # the ReadRadio answer never comes (stall)
])
def test_write_unclear_outcome_is_uncertain_and_sent_once(faults):
    fake, stick, session = rig(faults)
    with pytest.raises(errors.Uncertain) as exc:
        session.execute(TEMP, b"\x00\x50\x02")
    assert fake.count(0x01) == 1
    assert "NOT sent again" in str(exc.value)
    assert exc.value.exit_code == errors.EXIT_UNCERTAIN


@pytest.mark.parametrize("faults", [{"late": {0x03: 1.2}}, {"late": {0x01: 1.2}}, {"stick_nak": 1}])
def test_write_clear_outcome_despite_slow_or_refused_poll(faults):
    """A late answer that does come, or a poll the stick NAKs once and then answers, leaves the
    outcome clear: the ACK is read, nothing is sent twice."""
    fake, stick, session = rig(faults)
    assert session.execute(TEMP, b"\x00\x50\x02") == b""
    assert fake.count(0x01) == 1


def test_write_after_uncertain_starts_from_a_clean_stick():
    fake, stick, session = rig({"late": {0x01: 9.0}})
    with pytest.raises(errors.Uncertain):
        session.execute(TEMP, b"\x00\x50\x02")
    assert session.execute(MODEL)[:4] == b"\x03515"
    assert stick.resyncs >= 1
    assert [w[13] for w in fake.transmits] == [0x4C, 0x8D]


# --- wake ------------------------------------------------------------------------------------------

def test_wake_skips_power_control_when_pump_listens():
    fake, stick, session = rig()
    assert session.wake(MODEL, POWER, b"\x01\x0a")[:4] == b"\x03515"
    assert [w[13] for w in fake.transmits] == [0x8D]


def test_wake_powers_on_a_sleeping_pump_once():
    fake, stick, session = rig(pump=Pump(asleep=True))
    assert session.wake(MODEL, POWER, b"\x01\x07")[:4] == b"\x03515"
    assert [w[13] for w in fake.transmits] == [0x8D, 0x5D, 0x8D]
    assert fake.transmits[1][15:17] == b"\x01\x07"
    assert 17.0 < fake.clock() < 25.0   # the wake-up was waited out by reading, not re-sent


def test_radio_off_is_sent_once_without_waiting_for_an_answer():
    """PowerControl [00 00] gets no USB answer at all (spec §3.7, vendor captures)."""
    fake, stick, session = rig(faults={"silent": {0x01}})
    start = fake.clock()
    assert session.execute(cmd("PowerControl", 0x5D, frames_=0, reply_size=0, retries=0,
                               button=0x55, write=True), b"\x00\x00") == b""
    assert fake.count(0x01) == 1 and fake.clock() - start < 0.5

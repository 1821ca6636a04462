"""The write flow (decocare.dosing) against a small scripted pump at the session level.

``FakeSession`` answers reads with the emulator's reply builders (decocare.emulator.replies, the
one independent oracle of the reply layouts) from its own state, and applies writes to that
state and its history (encoded with decocare.history), so each test can say exactly what the
pump did and what went over the wire.  The emulator tests (test_dosing_emulator.py) do the
same end to end through the stick.
"""
import datetime
import json
import os
import tempfile

import pytest

from decocare import commands, dosing, errors, history, session as session_mod
from decocare.emulator import replies
from decocare.emulator.pump import Pump as EmulatedPump
from decocare.journal import Journal
from decocare.models import get_model
from decocare.tools import writes

T0 = datetime.datetime(2024, 5, 1, 12, 0, 0)
JOURNALS = tempfile.TemporaryDirectory(prefix="decocare-journals-")     # one per writer()


def emulator_pump_settings():
    """The emulated pump's default settings (the keys its ReadSettings builder reads)."""
    from decocare.emulator.stick import Clock, Timing
    return dict(EmulatedPump("522", "208850", Clock(), Timing("fast")).settings)


class FakeSession:
    """A pump behind ``execute``.  ``fate`` decides the next write: "ack", "nak" (code
    ``nak_code``), "lost" (executed, answer lost -> Uncertain) or "dropped" (not executed,
    Uncertain).  ``sent`` lists (name, params) of every command in order."""

    serial = "208850"
    packet = session_mod.Session.packet

    def __init__(self, model="522", max_bolus=10.0, max_basal=3.0, temp_type=0, fate="ack",
                 nak_code=0x09, status_code=3):
        self.model = get_model(model)
        self.max_bolus, self.max_basal, self.temp_type = max_bolus, max_basal, temp_type
        self.fate, self.nak_code, self.status_code = fate, nak_code, status_code
        self.sent = []
        self.temp = ("absolute", 0, 0.0, 0)        # type, percent, rate, minutes left
        self.bolusing = self.suspended = False
        self.pattern = 0
        self.clock = T0
        self.records = [history.encode_record("Bolus", self.model, T0 - datetime.timedelta(hours=2),
                                              amount=1.0, programmed=1.0, duration=0)]
        self.failing_reads = set()
        self.executed = []

    # --- reads: built by the emulator's reply builders (one layout oracle, not a third copy) --
    def _state(self):
        """This fake's state in the shape decocare.emulator.replies reads from a pump."""
        fake = self
        kind, pct, rate, minutes = self.temp
        settings = dict(emulator_pump_settings(), max_bolus=self.max_bolus, max_basal=self.max_basal,
                        selected_pattern=self.pattern, temp_basal_type=self.temp_type)

        class State:
            model, suspended = fake.model, fake.suspended

            def now(self):
                return fake.clock

            def bolusing(self):
                return fake.bolusing

            def temp_basal(self):
                if not minutes:
                    return None
                return {"type": kind, "rate": rate, "percent": pct, "seconds_left": minutes * 60}
        state = State()
        state.settings = settings
        return state

    def _read(self, row, params):
        name = row.variant_of or row.name
        if name in self.failing_reads:
            raise errors.NoResponse("the pump did not answer %s" % name)
        if name == "ReadHistoryData":
            return history.build_pages(self.records, self.model)[params[0]]
        if name not in ("ReadPumpModel", "ReadSettings", "ReadBasalTemp", "ReadPumpStatus", "ReadRTC"):
            raise AssertionError("unexpected read %s" % name)
        return replies.build(name, self._state()).ljust(row.reply_size, b"\0")

    # --- writes ---------------------------------------------------------------------------
    def _apply(self, row, params):
        self.executed.append(row.name)
        m, ts = self.model, self.clock
        if row.name == "TempBasal":
            rate = int.from_bytes(params[:2], "big") / 40.0
            self.temp = ("absolute", 0, rate, params[2] * 30)
            self.records += [history.encode_record("TempBasal", m, ts, temp="absolute", rate=rate),
                             history.encode_record("TempBasalDuration", m, ts,
                                                   **{"duration (min)": params[2] * 30})]
        elif row.name == "TempBasalPercent":
            self.temp = ("percent", params[0], 0.0, params[1] * 30)
        elif row.name == "Bolus":
            units = (int.from_bytes(params, "big")) / m.bolus_strokes
            self.bolusing = True
            self.records.append(history.encode_record("Bolus", m, ts, amount=units, programmed=units,
                                                      duration=0))
        elif row.name == "SetSuspend":
            self.suspended = bool(params[0])
            self.records.append(history.encode_record("PumpSuspend" if params[0] else "PumpResume", m, ts))
        elif row.name == "SetRTC":
            self.clock = datetime.datetime(params[3] * 256 + params[4], params[5], params[6], *params[:3])
        elif row.name == "SelectBasalProfile":
            self.pattern = params[0]

    writes_sent = 0

    def execute(self, row, params=b"", validate=None, attempts=None):
        self.sent.append((row.name, bytes(params)))
        if not row.write:
            return self._read(row, params)
        self.clock += datetime.timedelta(seconds=1)    # each write in a second of its own
        self.writes_sent += 1
        fate = self.fate
        if fate == "nak":
            raise errors.Refused("NAK", code=self.nak_code)
        if fate in ("ack", "lost"):
            self._apply(row, params)
        if fate == "ack":
            return b""
        raise errors.Uncertain("%s sent once, outcome unknown" % row.name)

    def writes(self):
        return [name for name, _ in self.sent if commands.by_name(name).write]


def writer(fake, dry_run=False, journal=True):
    """The write flow as the tools run it: the pump's model already read (the wake probe), a
    write journal of its own (``journal``: True, a Journal, or None for none)."""
    if journal is True:
        journal = Journal(fake.serial, path=os.path.join(tempfile.mkdtemp(dir=JOURNALS.name),
                                                         "writes.json"))
    before = len(fake.sent)
    pump = commands.Pump(fake, model=fake.model.number)
    assert pump.model == fake.model and fake.sent[before:] in ([("ReadPumpModel", b"")], [])  # 508: trusted
    del fake.sent[before:]
    return dosing.Writer(pump, dry_run=dry_run, journal=journal)


# --- temp basal -------------------------------------------------------------------------------

def test_temp_basal_sends_the_captured_params_once_and_verifies():
    fake = FakeSession("515")
    result = writer(fake).temp_basal(rate=2.0, duration=60)
    assert result.outcome == "delivered" and result.exit_code == 0
    assert [n for n, _ in fake.sent] == ["ReadSettings", "TempBasal", "ReadBasalTemp"]
    assert ("TempBasal", bytes.fromhex("005002")) in fake.sent
    out = result.as_json()
    assert out["received"] is True and out["recieved"] is True
    assert out["requested"]["params"] == "005002"
    assert out["requested"]["packet"] == "0100a7012088508003000001004c860050028c"
    assert out["verification"] == {"temp": "absolute", "rate": 2.0, "duration": 60}
    assert (out["temp"], out["rate"], out["duration"]) == ("absolute", 2.0, 60)


@pytest.mark.parametrize("model, rate, duration, why", [
    ("522", 3.5, 30, "max basal 3.0"),
    ("522", 1.37, 30, "not a multiple"),
    ("523", 1.025, 30, "not a multiple"),
    ("522", 1.0, 45, "multiple of 30"),
    ("522", 1.0, 1470, "multiple of 30"),
    ("522", -1.0, 30, "outside"),
    ("508", 1.0, 30, "does not support"),
])
def test_temp_basal_refused_before_sending(model, rate, duration, why):
    fake = FakeSession(model)
    result = writer(fake).temp_basal(rate=rate, duration=duration)
    assert result.outcome == "refused" and result.exit_code == errors.EXIT_REFUSED
    assert why in result.reason and not result.sent
    assert fake.writes() == []


def test_temp_basal_on_the_x23_fine_steps():
    fake = FakeSession("523")
    assert writer(fake).temp_basal(rate=0.975, duration=30).outcome == "delivered"
    assert fake.temp[2] == 0.975


def test_absolute_temp_refused_when_the_pump_is_set_to_percent():
    fake = FakeSession("522", temp_type=1)
    result = writer(fake).temp_basal(rate=1.0, duration=30)
    assert result.outcome == "refused" and "type is percent" in result.reason
    assert fake.writes() == []
    # ... and cancel follows the pump's type
    assert writer(fake).cancel_temp_basal().command == "TempBasalPercent"
    assert fake.writes() == ["TempBasalPercent"]


def test_pump_nak_is_refused_with_its_code():
    fake = FakeSession("522", fate="nak", nak_code=0x09)
    out = writer(fake).temp_basal(rate=1.0, duration=30).as_json()
    assert out["outcome"] == "refused" and out["code"] == 9 and out["sent"] is True
    assert out["received"] is False and "max" in out["code_meaning"]
    assert fake.writes() == ["TempBasal"] and fake.executed == []


def test_lost_ack_with_fresh_read_back_is_delivered_with_a_note():
    fake = FakeSession("522", fate="lost")
    result = writer(fake).temp_basal(rate=1.0, duration=30)
    assert result.outcome == "delivered" and result.received is False
    assert any("answer was lost" in n and "after the send" in n for n in result.notes)
    assert fake.writes() == ["TempBasal"]
    # the ACK path reads nothing before the send but the settings; the lost one proves by history
    assert [n for n, _ in fake.sent] == ["ReadSettings", "TempBasal", "ReadBasalTemp", "ReadRTC",
                                         "ReadHistoryData"]


def test_dropped_command_is_uncertain_never_resent():
    fake = FakeSession("522", fate="dropped")
    result = writer(fake).temp_basal(rate=1.0, duration=30)
    assert result.outcome == "uncertain" and result.exit_code == errors.EXIT_UNCERTAIN
    assert "no temp basal" in result.reason
    assert fake.writes() == ["TempBasal"]


def _identical_temp_set(fake, seconds_ago):
    """The same temp basal (1.0 U/h, 30 min) set ``seconds_ago``: running, and in history."""
    fake.temp = ("absolute", 0, 1.0, 30)
    when = fake.clock - datetime.timedelta(seconds=seconds_ago)
    fake.records += [history.encode_record("TempBasal", fake.model, when, temp="absolute", rate=1.0),
                     history.encode_record("TempBasalDuration", fake.model, when,
                                           **{"duration (min)": 30})]


@pytest.mark.parametrize("seconds_ago", [3, 20, 50])
def test_lost_answer_when_the_same_temp_was_just_set_is_uncertain(seconds_ago):
    """Not executed (the argument packet was lost), but the same temp basal was set moments
    before: the read-back matches, and only its record's stamp, before the send, tells."""
    fake = FakeSession("522", fate="dropped")
    _identical_temp_set(fake, seconds_ago)
    result = writer(fake).temp_basal(rate=1.0, duration=30)
    assert result.outcome == "uncertain" and "cannot tell" in result.reason
    assert fake.executed == []


def test_lost_ack_when_the_same_temp_was_just_set_is_delivered_by_its_new_record():
    fake = FakeSession("522", fate="lost")
    _identical_temp_set(fake, 20)
    result = writer(fake).temp_basal(rate=1.0, duration=30)
    assert result.outcome == "delivered" and fake.executed == ["TempBasal"]
    assert any("after the send" in n for n in result.notes)


@pytest.mark.parametrize("broken", ["ReadRTC", "ReadHistoryData"])
def test_lost_ack_without_the_history_proof_is_uncertain(broken):
    fake = FakeSession("522", fate="lost")
    w = writer(fake)
    original = fake._read

    def read(row, params):
        if row.name == broken:
            raise errors.NoResponse("silence")
        return original(row, params)
    fake._read = read
    result = w.temp_basal(rate=1.0, duration=30)
    assert result.outcome == "uncertain" and fake.executed == ["TempBasal"]
    assert any("could not read" in n for n in result.notes)


def test_ack_without_a_readable_verification_is_uncertain():
    fake = FakeSession("522")
    w = writer(fake)
    w.settings()
    fake.sent.clear()
    original = fake._read

    def read(row, params):
        if row.name == "ReadBasalTemp" and any(n == "TempBasal" for n, _ in fake.sent):
            raise errors.NoResponse("silence")
        return original(row, params)
    fake._read = read
    result = w.temp_basal(rate=1.0, duration=30)
    assert result.outcome == "uncertain" and result.received
    assert "ACKed" in result.reason


def test_cancel_reads_back_no_temp():
    fake = FakeSession("522")
    fake.temp = ("absolute", 0, 1.5, 90)
    result = writer(fake).cancel_temp_basal()
    assert result.outcome == "delivered" and fake.temp[3] == 0
    assert ("TempBasal", bytes(3)) in fake.sent


def test_failed_pre_read_refuses_with_the_link_exit_code():
    fake = FakeSession("522")
    fake.failing_reads.add("ReadSettings")
    result = writer(fake).temp_basal(rate=1.0, duration=30)
    assert result.outcome == "refused" and "nothing sent" in result.reason
    assert result.exit_code == errors.EXIT_NO_RESPONSE and fake.writes() == []


# --- bolus ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, units, params", [("522", 2.5, "19"), ("523", 0.975, "0027"),
                                                   ("554", 12.3, "01ec")])
def test_bolus_delivered_and_verified_in_history(model, units, params):
    fake = FakeSession(model, max_bolus=15.0)
    result = writer(fake).bolus(units)
    assert result.outcome == "delivered", result.as_json()
    out = result.as_json()
    assert out["requested"]["params"] == params and out["_type"] == "BolusRequest"
    assert out["bolusing"] is True and out["suspended"] is False and out["status"] == "normal"
    assert [r["programmed"] for r in out["verification"]["new_bolus_records"]] == [units]
    assert fake.writes() == ["Bolus"]
    assert [n for n, _ in fake.sent] == ["ReadSettings", "ReadPumpStatus", "ReadHistoryData", "Bolus",
                                         "ReadPumpStatus", "ReadHistoryData"]


@pytest.mark.parametrize("setup, units, why", [
    (dict(), 10.5, "max bolus 10.0"),
    (dict(), 0.05, "not a multiple"),
    (dict(), 0, "outside"),
    (dict(model="512"), 1.0, "no ReadPumpStatus"),
    (dict(model="508"), 1.0, "does not support Bolus"),
    (dict(bolusing=True), 1.0, "bolus is in progress"),
    (dict(suspended=True), 1.0, "suspended"),
])
def test_bolus_refused_before_sending(setup, units, why):
    setup = dict(setup)
    fake = FakeSession(setup.pop("model", "522"))
    for key, value in setup.items():
        setattr(fake, key, value)
    result = writer(fake).bolus(units)
    assert result.outcome == "refused" and why in result.reason, result.reason
    assert fake.writes() == [] and not result.sent


def test_bolus_nak_in_progress():
    fake = FakeSession("522", fate="nak", nak_code=0x0C)
    out = writer(fake).bolus(1.0).as_json()
    assert out["outcome"] == "refused" and out["code"] == 0x0C and "in progress" in out["code_meaning"]


def test_bolus_lost_ack_delivered_only_on_one_matching_new_record():
    fake = FakeSession("523", fate="lost")
    result = writer(fake).bolus(1.0)
    assert result.outcome == "delivered" and not result.received
    assert fake.executed == ["Bolus"]


def test_bolus_dropped_is_uncertain_with_the_advice():
    fake = FakeSession("523", fate="dropped")
    result = writer(fake).bolus(1.0)
    assert result.outcome == "uncertain"
    assert "does not prove it was not delivered" in result.reason
    assert dosing.UNCERTAIN_BOLUS_ADVICE in result.notes


def test_bolus_ack_but_two_new_records_is_uncertain():
    fake = FakeSession("522")
    original = fake._apply

    def twice(row, params):
        original(row, params)
        original(row, params)
    fake._apply = twice
    result = writer(fake).bolus(1.0)
    assert result.outcome == "uncertain" and "2 new bolus record" in result.reason


def test_bolus_ack_but_page0_unreadable_is_uncertain():
    fake = FakeSession("522")
    w = writer(fake)
    original = fake._read

    def read(row, params):
        if row.name == "ReadHistoryData" and "Bolus" in fake.executed:
            raise errors.CRCError("page fails its CRC16 check")
        return original(row, params)
    fake._read = read
    result = w.bolus(1.0)
    assert result.outcome == "uncertain" and result.received and result.exit_code == errors.EXIT_UNCERTAIN
    assert fake.writes() == ["Bolus"] and fake.executed == ["Bolus"]        # sent exactly once
    assert "CHECK THE PUMP" in " ".join(result.notes) and "could not be read" in result.reason


# --- suspend, clock, keys, profile ------------------------------------------------------------

def test_suspend_and_resume_verified_by_status():
    fake = FakeSession("522")
    assert writer(fake).set_suspend(True).outcome == "delivered" and fake.suspended
    again = writer(fake).set_suspend(True)
    assert again.outcome == "refused" and "already suspended" in again.reason
    assert writer(fake).set_suspend(False).outcome == "delivered" and not fake.suspended
    assert fake.writes() == ["SetSuspend", "SetSuspend"]


def test_suspend_on_x12_verified_by_history():
    fake = FakeSession("512")
    result = writer(fake).set_suspend(True)
    assert result.outcome == "delivered" and result.verification == {"new_records": ["PumpSuspend"]}
    fake.fate = "dropped"
    assert writer(fake).set_suspend(False).outcome == "uncertain"


def test_set_clock_verified_within_seconds():
    fake = FakeSession("522")
    when = datetime.datetime(2024, 6, 2, 8, 30, 0)
    result = writer(fake).set_clock(when)
    assert result.outcome == "delivered" and fake.clock.date() == when.date()
    fake.fate = "dropped"
    assert writer(fake).set_clock(datetime.datetime(2024, 1, 1)).outcome == "uncertain"


def test_keys_stop_at_the_first_refusal():
    fake = FakeSession("522")
    result = writer(fake).press_keys(["act", "esc"])
    assert result.outcome == "delivered" and result.legacy["pressed"] == ["act", "esc"]
    assert [p for n, p in fake.sent] == [b"\x02", b"\x01"]
    fake.fate, fake.nak_code = "nak", 0x08
    refused = writer(fake).press_keys(["up", "down"])
    assert refused.outcome == "refused" and refused.legacy["pressed"] == []
    assert fake.writes().count("KeypadPush") == 3


def test_select_profile_verified_by_settings():
    fake = FakeSession("522")
    assert writer(fake).select_profile("B").outcome == "delivered" and fake.pattern == 2
    assert writer(fake).select_profile("C").outcome == "refused"


# --- dry run ----------------------------------------------------------------------------------

def test_dry_run_shows_the_exact_packet_and_sends_nothing():
    fake = FakeSession("523")
    result = writer(fake, dry_run=True).bolus(1.5)
    assert result.outcome == "dry-run" and result.exit_code == 0 and not result.sent
    row = commands.resolve("Bolus", "523")
    assert result.requested["packet"] == fake.packet(row, bytes.fromhex("003c")).hex()
    assert fake.writes() == []
    assert "would send TransmitPacket" in result.text()


def test_json_of_every_outcome_says_what_happened():
    """The --json object round-trips through JSON and tells the outcome (a lost answer whose
    read-back proves the execution is delivered), whether it was sent and
    ACKed (decocare's misspelled key too), and openaps' keys with a zoned timestamp."""
    expect = {"ack": ("delivered", True), "nak": ("refused", False), "lost": ("delivered", False),
              "dropped": ("uncertain", False)}
    for fate, (outcome, received) in expect.items():
        for result, values in ((writer(FakeSession("522", fate=fate)).bolus(1.0), {"units": 1.0}),
                               (writer(FakeSession("522", fate=fate)).temp_basal(rate=0.5, duration=30),
                                {"temp": "absolute", "rate": 0.5, "duration": 30})):
            out = json.loads(json.dumps(result.as_json()))
            assert out["outcome"] == outcome and out["sent"] is True, (fate, out)
            assert out["received"] is received and out["recieved"] is received
            shown = out.get("verification") if "rate" in values and out.get("verification") else values
            assert {k: out[k] for k in values} == {k: shown[k] for k in values}   # openaps: read-back
            assert {k: out["requested"][k] for k in values} == values
            assert datetime.datetime.fromisoformat(out["timestamp"]).utcoffset() is not None
            if fate == "nak":
                assert out["code"] == 0x09 and out["code_meaning"].startswith("value out of range")


# --- the time a clock is set to --------------------------------------------------------------

def test_pump_time_converts_zones():
    assert writes.pump_time("2024-03-01T14:05:00") == datetime.datetime(2024, 3, 1, 14, 5)
    assert writes.pump_time("2024-03-01T14:05:00+00:00", "America/New_York") == \
        datetime.datetime(2024, 3, 1, 9, 5)
    now = writes.pump_time("now", "UTC")
    assert abs((now - datetime.datetime.utcnow()).total_seconds()) < 5
    with pytest.raises(errors.BadInput):
        writes.pump_time("yesterday")
    with pytest.raises(errors.BadInput):
        writes.pump_time("now", "Mars/Olympus")


# --- the write journal: a lost answer against an identical send moments before ------------------

def test_lost_answer_right_after_an_identical_send_is_uncertain():
    """A loop run again at once: the first send executed (its record stamped a second ago), the
    second's argument packet was lost.  Page 0 shows a matching record inside the whole-second
    slack; only the journal knows it is the first send's."""
    fake = FakeSession("522", fate="lost")
    journal = Journal(fake.serial, path=os.path.join(tempfile.mkdtemp(dir=JOURNALS.name), "w.json"))
    assert writer(fake, journal=journal).temp_basal(rate=1.0, duration=30).outcome == "delivered"
    fake.fate = "dropped"
    result = writer(fake, journal=journal).temp_basal(rate=1.0, duration=30)
    assert result.outcome == "uncertain" and "identical one was sent" in result.reason
    assert fake.executed == ["TempBasal"]
    # a different temp basal sent just before does not stand in the way
    fake.fate = "lost"
    assert writer(fake, journal=journal).temp_basal(rate=1.5, duration=30).outcome == "delivered"


def test_lost_answer_without_a_usable_journal_is_uncertain(tmp_path):
    fake = FakeSession("522", fate="lost")
    result = writer(fake, journal=None).temp_basal(rate=1.0, duration=30)
    assert result.outcome == "uncertain" and "no write journal" in result.reason
    broken = tmp_path / "w.json"
    broken.write_text("{not json")
    result = writer(fake, journal=Journal(fake.serial, path=str(broken))).temp_basal(rate=1.0, duration=60)
    assert result.outcome == "uncertain" and "no write journal" in result.reason
    assert fake.executed == ["TempBasal", "TempBasal"]       # both executed, neither hidden


def test_journal_keeps_the_newest_and_is_careful_with_the_clock(tmp_path):
    now = [1000.0]
    j = Journal("1", path=str(tmp_path / "w.json"), clock=lambda: now[0])
    entries = []
    for k in range(40):
        now[0] += 10
        entries.append(j.sent("TempBasal", bytes([0, k, 1])))
    assert len(json.load(open(j.path))["1"]) == 32
    assert j.identical_before(entries[-1], 5) is False
    assert j.identical_before(entries[0], 5) is None             # dropped: not known any more
    now[0] += 2
    again = j.sent("TempBasal", bytes([0, 39, 1]))
    assert j.identical_before(again, 1) is False and j.identical_before(again, 3) is True
    now[0] -= 100                                               # the clock went back
    back = j.sent("TempBasal", bytes([0, 39, 1]))
    assert j.identical_before(back, 3) is True                  # the "future" one counts
    assert Journal("2", path=str(tmp_path / "w.json")).identical_before(back, 3) is None
    twin = Journal("3", path=str(tmp_path / "w.json"), clock=lambda: 5.0)   # same millisecond
    first, second = twin.sent("TempBasal", b"\x01"), twin.sent("TempBasal", b"\x01")
    assert first == second and twin.identical_before(second, 0) is True
    (tmp_path / "a-file").write_text("")
    assert Journal("1", path=str(tmp_path / "a-file" / "w.json")).sent("TempBasal", b"") is None

"""The write flow end to end against the emulated stick + pump, with faults on every failure
point, checked against the emulator's ledger (what the pump really executed).

The randomized test is the issue's acceptance check: at least 1000 bolus and temp-basal
attempts; each write executed at most once; every "delivered" in the ledger with the requested
values; every "refused" absent from it; every execution not confirmed reported "uncertain".
"""
import collections
import contextlib
import datetime
import os
import random
import tempfile

import pytest

from decocare import dosing, errors, history
from decocare.emulator import Emulator
from decocare.connect import open_pump
from decocare.journal import Journal

SERIAL = "208850"
DOSE_OPS = ("Bolus", "TempBasal", "TempBasalPercent")
# the emulator's fast timing answers in milliseconds: poll and give up on stalls accordingly
FAST = dict(stick_options=dict(poll_interval=0.002, chunk_interval=0.002), session_options=dict(stall_wait=0.2))
FAULTS = ("timeout=0.03,drop_args=0.08,lost_ack=0.08,nak=0.02,corrupt=0.01,stall=0.03,"
          "late_usb=0.0008,seed=%d")


def executed(emu, start, ops=DOSE_OPS):
    """Ledger entries of doses the pump executed since entry ``start``."""
    return [e for e in emu.ledger[start:] if e["op"] in ops]


def new_journal():
    """A write journal of its own, as one host keeps (the tools' default is the state folder)."""
    return Journal(SERIAL, path=os.path.join(tempfile.mkdtemp(dir=JOURNALS.name), "writes.json"))


JOURNALS = tempfile.TemporaryDirectory(prefix="decocare-journals-")
_JOURNAL_OF = {}


def journal_of(emu):
    """The one host journal of the runs against ``emu``."""
    return _JOURNAL_OF.setdefault(emu.id, new_journal())


def attempt(pump, rng, journal):
    """One loop-like run (wake if needed, one write); returns (kind, requested, Result or None)."""
    if rng.random() < 0.5:
        units = rng.choice([0.1, 0.5, 1.0, 2.0, 2.5, 4.0, 9.9, 10.0, 10.5, 0.05, 0.075, 1.025])
        kind, requested, act = "bolus", {"units": units}, lambda w: w.bolus(units)
    elif rng.random() < 0.8:
        rate = rng.choice([0, 0.05, 0.5, 0.975, 1.0, 1.35, 1.37, 2.0, 2.05, 3.0])
        duration = rng.choice([0, 30, 60, 90, 240, 45, 1470])
        kind, requested = "temp", {"rate": rate, "duration": duration}
        act = lambda w: w.temp_basal(rate=rate, duration=duration)
    else:
        percent, duration = rng.choice([0, 50, 100, 150]), rng.choice([30, 60, 0])
        kind, requested = "percent", {"percent": percent, "duration": duration}
        act = lambda w: w.temp_basal(percent=percent, duration=duration)
    try:
        pump.ensure_awake()
    except errors.DecocareError:
        return kind, requested, None          # waking failed: a tool would exit before sending
    return kind, requested, act(dosing.Writer(pump, journal=journal))


def matches(entry, kind, requested):
    if kind == "bolus":
        return abs(entry["units"] - requested["units"]) < 1e-6
    if kind == "temp":
        return abs(entry["rate"] - requested["rate"]) < 1e-6 and entry["duration"] == requested["duration"]
    return entry["percent"] == requested["percent"] and entry["duration"] == requested["duration"]


@contextlib.contextmanager
def opened(emu):
    """open_pump, tried again while its wake-up read fails (reads only: nothing is sent)."""
    for _ in range(10):
        try:
            context = open_pump(emu.url, SERIAL, **FAST)
            pump = context.__enter__()
        except errors.DecocareError:
            continue
        try:
            yield pump
        finally:
            context.__exit__(None, None, None)
        return
    raise AssertionError("the emulator never answered the wake-up")


def check(emu, start, kind, requested, result, table):
    """The ledger against what the flow reported for one attempt."""
    done = executed(emu, start)
    outcome = result.outcome if result else "not sent"
    pump_nak = outcome == "refused" and result.sent
    table[(kind, outcome + (" (NAK)" if pump_nak else ""), len(done))] += 1
    assert len(done) <= 1, (requested, done)                     # never twice
    if outcome == "delivered":
        assert done and matches(done[0], kind, requested), (requested, done, result.as_json())
    elif done:                                                  # executed, not confirmed
        assert outcome == "uncertain", (requested, done, result.as_json())
    if outcome in ("refused", "not sent"):
        assert not done, (requested, result and result.as_json())


@pytest.mark.slow
@pytest.mark.parametrize("model, attempts, seed", [("522", 500, 1), ("523", 500, 2)])
def test_randomized_writes_under_faults(model, attempts, seed):
    rng = random.Random(seed)
    table = collections.Counter()
    journal = new_journal()
    with Emulator(model, SERIAL, faults=FAULTS % seed, weeks=1) as emu:
        emu.pump.settings.update(max_bolus=10.0, max_basal=2.0)
        for block in range(attempts // 50):     # a fresh port per 50 attempts, as new runs
            with opened(emu) as pump:
                for _ in range(50):
                    emu.advance(rng.choice([0, 0, 1, 30, 600]))      # boluses end, RF lapses
                    start = len(emu.ledger)
                    kind, requested, result = attempt(pump, rng, journal)
                    check(emu, start, kind, requested, result, table)
        counts = dict(emu.fault_counts)
    print("\n%s: %d attempts, faults fired %s" % (model, attempts, counts))
    print("%-8s %-16s %-9s %s" % ("kind", "outcome", "executed", "count"))
    for (kind, outcome, n), count in sorted(table.items()):
        print("%-8s %-16s %-9d %d" % (kind, outcome, n, count))
    outcomes = collections.Counter(o.split()[0] for (_, o, _), c in table.items() for _ in range(c))
    # the run must really have exercised every outcome and the dangerous fault paths
    assert outcomes["delivered"] and outcomes["refused"] and outcomes["uncertain"]
    assert counts["lost_ack"] and counts["drop_args"] and counts["late_usb"]
    assert any(o == "delivered" and n == 1 and c for (k, o, n), c in table.items() if k == "bolus")


# --- each failure point, forced ---------------------------------------------------------------

@pytest.fixture
def emu():
    with Emulator("523", SERIAL, weeks=1) as emulator:
        yield emulator


def run(emu, act):
    with open_pump(emu.url, SERIAL, **FAST) as pump:
        return act(dosing.Writer(pump, journal=journal_of(emu)))


def force_on_write(emu, fault, act):
    """Force ``fault`` on the write itself: the reads before it run clean."""
    with open_pump(emu.url, SERIAL, **FAST) as pump:
        writer = dosing.Writer(pump, journal=journal_of(emu))
        real_send = writer.send

        def send(result, name, params):
            emu.force(fault)
            return real_send(result, name, params)
        writer.send = send
        return act(writer)


def test_lost_ack_bolus_is_delivered_once_with_a_note(emu):
    result = force_on_write(emu, "lost_ack", lambda w: w.bolus(1.5))
    assert result.outcome == "delivered" and not result.received
    assert any("answer was lost" in note for note in result.notes)
    assert [e["units"] for e in executed(emu, 0)] == [1.5]


def test_dropped_argument_packet_bolus_is_uncertain_and_not_resent(emu):
    result = force_on_write(emu, "drop_args", lambda w: w.bolus(1.5))
    assert result.outcome == "uncertain" and result.exit_code == errors.EXIT_UNCERTAIN
    assert dosing.UNCERTAIN_BOLUS_ADVICE in result.notes
    assert executed(emu, 0) == []
    assert emu.fault_counts["drop_args"] == 1


def test_lost_ack_temp_basal_is_delivered_dropped_is_uncertain(emu):
    result = force_on_write(emu, "lost_ack", lambda w: w.temp_basal(rate=1.2, duration=90))
    assert result.outcome == "delivered" and result.verification["duration"] == 90
    result = force_on_write(emu, "timeout", lambda w: w.temp_basal(rate=0.5, duration=30))
    assert result.outcome == "uncertain" and "1.2 U/h" in result.reason
    assert [e["rate"] for e in executed(emu, 0)] == [1.2]


def test_pump_nak_codes_are_refusals(emu):
    emu.faults.nak_code = 0x09
    result = force_on_write(emu, "nak", lambda w: w.temp_basal(rate=1.0, duration=30))
    assert result.outcome == "refused" and result.code == 0x09 and result.sent
    emu.pump.settings["temp_basal_type"] = 1        # a pump set to percent: the check refuses
    result = run(emu, lambda w: w.temp_basal(rate=1.0, duration=30))
    assert result.outcome == "refused" and not result.sent and "percent" in result.reason
    assert executed(emu, 0) == []


def test_bolus_while_bolusing_refused_before_sending(emu):
    assert run(emu, lambda w: w.bolus(5.0)).outcome == "delivered"
    second = run(emu, lambda w: w.bolus(1.0))
    assert second.outcome == "refused" and "in progress" in second.reason and not second.sent
    assert len(executed(emu, 0)) == 1


# --- the history the pump writes for each write -------------------------------------------------

def newest(emu, *types):
    """The newest records of page 0 (newest first), only of ``types``."""
    with open_pump(emu.url, SERIAL, **FAST) as pump:
        records = history.decode_page(pump.history_page(0), pump.model).records
    return [r for r in records if r["_type"] in types]


def test_each_write_leaves_its_history_records(emu):
    assert run(emu, lambda w: w.temp_basal(rate=1.35, duration=120)).outcome == "delivered"
    temp, length = newest(emu, "TempBasal")[0], newest(emu, "TempBasalDuration")[0]
    assert (temp["temp"], temp["rate"], length["duration (min)"]) == ("absolute", 1.35, 120)
    assert run(emu, lambda w: w.bolus(2.25)).outcome == "delivered"
    bolus = newest(emu, "Bolus")[0]
    assert (bolus["amount"], bolus["programmed"]) == (2.25, 2.25)
    emu.advance(60)
    assert run(emu, lambda w: w.set_suspend(True)).outcome == "delivered"
    assert newest(emu, "PumpSuspend", "PumpResume")[0]["_type"] == "PumpSuspend"
    assert run(emu, lambda w: w.set_suspend(False)).outcome == "delivered"
    assert newest(emu, "PumpSuspend", "PumpResume")[0]["_type"] == "PumpResume"
    when = datetime.datetime(2031, 2, 3, 4, 5, 6)
    assert run(emu, lambda w: w.set_clock(when)).outcome == "delivered"
    assert newest(emu, "NewTimeSet")[0]["timestamp"].startswith("2031-02-03T04:05")
    assert newest(emu, "ChangeTime")
    assert run(emu, lambda w: w.select_profile("B")).outcome == "delivered"
    assert newest(emu, "SelectBasalProfile")
    assert run(emu, lambda w: w.temp_basal(percent=40, duration=30)).outcome == "delivered"
    assert newest(emu, "TempBasal")[0]["temp"] == "percent"


def test_cancel_and_keys(emu):
    run(emu, lambda w: w.temp_basal(rate=1.0, duration=60))
    result = run(emu, lambda w: w.cancel_temp_basal())
    assert result.outcome == "delivered" and result.verification["duration"] == 0
    keys = run(emu, lambda w: w.press_keys(["esc", "act"]))
    assert keys.outcome == "delivered"
    assert [e["key"] for e in emu.ledger if e["op"] == "KeypadPush"] == ["ESC", "ACT"]


def test_x12_bolus_refused_but_temp_basal_and_suspend_work():
    with Emulator("512", SERIAL, weeks=1) as emu:
        result = run(emu, lambda w: w.bolus(1.0))
        assert result.outcome == "refused" and "ReadPumpStatus" in result.reason
        assert run(emu, lambda w: w.temp_basal(rate=0.85, duration=30)).outcome == "delivered"
        assert run(emu, lambda w: w.set_suspend(True)).outcome == "delivered"
        assert executed(emu, 0, ("Bolus",)) == []


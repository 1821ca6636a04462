"""The command catalogue: table invariants, model gating, opcode aliasing, parameter encoders,
decoders on the spec's example replies, Pump over a fake session, the generated doc, the CLI."""
import datetime
import json
import random
import subprocess
import sys

import pytest

from decocare import commands, errors, lib, models
from decocare.commands import COMMANDS, Pump, by_name, decode, for_opcode, params, resolve, supported
from decocare.tools import commands as commands_cli

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
ALL = [models.get_model(m) for m in models.KNOWN]


def pad(hexstr, size=64):
    data = bytes.fromhex(hexstr)
    return data + bytes(size - len(data))


# --- the table ---------------------------------------------------------------------------------

def test_names_unique_and_contract_attributes():
    names = [row.name for row in COMMANDS]
    assert len(names) == len(set(names))
    for row in COMMANDS:
        assert 0 <= row.opcode <= 0xFF
        assert row.frames in (0, 1, 2)
        assert row.reply_size in (0, 64, 192, 1024, 2048)
        assert isinstance(row.write, bool) and isinstance(row.doses, bool)
        assert row.kind in ("read", "page", "write")
        if row.write:
            assert row.retries == 0 and row.reply_size == 0, row.name
        else:
            assert row.retries == 2 and row.reply_size > 0 and row.button == 0, row.name
            assert row.frames == (1 if row.reply_size == 64 else 2), row.name
        assert not row.doses or row.write
        assert row.doc


def test_every_write_of_the_brief_is_a_write_row():
    expect = {"PowerControl": 0x5D, "SetRTC": 0x40, "TempBasal": 0x4C, "TempBasalPercent": 0x69,
              "Bolus": 0x42, "SetSuspend": 0x4D, "SelectBasalProfile": 0x4A, "KeypadPush": 0x5B}
    for name, opcode in expect.items():
        row = by_name(name)
        assert row.opcode == opcode and row.write and row.retries == 0
    assert by_name("PowerControl").button == 0x55 and not by_name("PowerControl").doses
    for name in ("TempBasal", "TempBasalPercent", "Bolus", "SetSuspend", "SelectBasalProfile"):
        assert by_name(name).doses
    assert not by_name("SetRTC").doses


def test_pages_and_sizes():
    assert by_name("ReadHistoryData").reply_size == 1024 and by_name("ReadHistoryData").kind == "page"
    assert by_name("ReadGlucoseHistory").reply_size == 1024
    assert by_name("ReadISIGHistory").reply_size == 2048
    assert by_name("ReadVCNTRHistory").opcode == 0xD5
    for name in ("ReadProfile_STD512", "ReadProfile_A512", "ReadProfile_B512"):
        assert by_name(name).reply_size == 192 and by_name(name).frames == 2


def test_one_meaning_per_opcode_per_model():
    for model in ALL:
        seen = {}
        for row in COMMANDS:
            if model in row.models:
                assert row.opcode not in seen, (model, row.name, seen.get(row.opcode))
                seen[row.opcode] = row.name


def test_variants_point_to_rows_and_cover_disjoint_models():
    for row in COMMANDS:
        if row.variant_of:
            main = by_name(row.variant_of)
            assert main.variant_of is None
            assert not any(m in row.models and m in main.models for m in ALL), row.name


def test_opcode_aliasing_508_reads_vs_later_writes():
    for opcode, read_name in ((0x40, "ReadBasalTemp508"), (0x41, "ReadTodayTotals508"),
                              (0x42, "ReadProfile_STD508")):
        row = for_opcode(opcode, "508")
        assert row.name == read_name and not row.write
    for model in ALL:
        if model.number == "508":
            continue
        assert for_opcode(0x42, model).name == "Bolus"
        if model.generation >= 12:
            assert for_opcode(0x40, model).name == "SetRTC"
            assert for_opcode(0x41, model).name == "SetMaxBolus" and for_opcode(0x41, model).write
        else:
            with pytest.raises(errors.Unsupported):
                for_opcode(0x41, model)
        assert not supported("ReadBasalTemp508", model)
    # an opcode that is a write on some model is never sent by a read, not even on the 508
    for opcode in (0x40, 0x41, 0x42):
        assert commands.is_write_opcode(opcode)
        assert opcode not in [row.opcode for row in commands.reads_for("508")]
    assert not supported("Bolus", "508") and not supported("SetRTC", "508")
    with pytest.raises(errors.Unsupported):
        params("Bolus", "508", units=1)
    with pytest.raises(errors.BadInput):
        for_opcode(0x42, None)          # ambiguous without the model
    assert for_opcode(0x8D, None).name == "ReadPumpModel"


@pytest.mark.parametrize("name,model,ok", [
    ("ReadCurPageNumber", "512", False), ("ReadSettings", "512", True), ("ReadSettings", "515", True),
    ("ReadContrast", "512", False), ("ReadContrast", "515", True), ("ReadPumpStatus", "512", False),
    ("ReadPumpStatus", "515", True), ("TempBasalPercent", "512", False), ("TempBasalPercent", "515", True),
    ("ReadCurGlucosePageNumber", "515", False), ("ReadCurGlucosePageNumber", "522", True),
    ("ReadGlucoseHistory", "715", False), ("ReadISIGHistory", "722", True),
    ("ReadVCNTRHistory", "522", False), ("ReadVCNTRHistory", "523", True),
    ("ReadBGTargets", "512", True), ("ReadBGTargets", "554", True), ("ReadBGTargets515", "512", False),
])
def test_model_gating(name, model, ok):
    assert supported(name, model) is ok


def test_logical_names_resolve_per_model():
    assert resolve("ReadSettings", "512").opcode == 0x91
    assert resolve("ReadSettings", "722").opcode == 0xC0
    assert resolve("ReadBGTargets", "515").opcode == 0x9F
    assert resolve("ReadBGTargets", "712").opcode == 0x8C
    assert resolve("ReadBasalTemp", "511").opcode == 0x78
    assert resolve("ReadProfile_A512", "711").opcode == 0x7B
    assert resolve("ReadRTC", "508").opcode == 0x20
    with pytest.raises(errors.BadInput):
        by_name("ReadNothing")
    with pytest.raises(errors.BadInput):
        supported("ReadNothing", "522")


# --- parameter encoders ------------------------------------------------------------------------

def test_temp_basal_captured_params():
    assert params("TempBasal", "515", rate=2.0, duration=60) == bytes.fromhex("005002")
    assert params("TempBasal", "515", rate="2.0", duration="60") == bytes.fromhex("005002")


@pytest.mark.parametrize("model,rate,duration,expect", [
    ("522", 0, 30, "000001"), ("522", 0.05, 1440, "000230"), ("522", 35, 30, "057801"),
    ("523", 0.975, 30, "002701"), ("523", 9.95, 30, "018e01"), ("523", 10.1, 0, "019400"),
])
def test_temp_basal_encoding(model, rate, duration, expect):
    assert params("TempBasal", model, rate=rate, duration=duration).hex() == expect


@pytest.mark.parametrize("model,values,reason", [
    ("522", dict(rate=0.975, duration=30), "0.05 U/h step (nearest: 0.95 or 1"),
    ("523", dict(rate=1.025, duration=30), "0.05 U/h step"),
    ("523", dict(rate=10.05, duration=30), "0.1 U/h step"),
    ("522", dict(rate=35.05, duration=30), "outside 0-35 U/h"),
    ("522", dict(rate=-0.1, duration=30), "outside"),
    ("522", dict(rate=1, duration=45), "multiple of 30 minutes"),
    ("522", dict(rate=1, duration=1470), "multiple of 30 minutes"),
    ("522", dict(rate="x", duration=30), "must be a number"),
    ("522", dict(rate=float("nan"), duration=30), "finite"),
    ("522", dict(rate=1), "takes values rate, duration"),
])
def test_temp_basal_refusals(model, values, reason):
    with pytest.raises(errors.BadInput) as exc:
        params("TempBasal", model, **values)
    assert reason in str(exc.value)


def test_temp_basal_percent():
    assert params("TempBasalPercent", "515", percent=50, duration=90) == bytes([50, 3])
    for bad in (101, -1, 50.5):
        with pytest.raises(errors.BadInput):
            params("TempBasalPercent", "515", percent=bad, duration=30)


@pytest.mark.parametrize("model,units,expect", [
    ("515", 1.0, "0a"), ("522", 25, "fa"), ("512", 0.1, "01"),
    ("523", 0.025, "0001"), ("523", 0.975, "0027"), ("523", 1.05, "002a"), ("523", 10.0, "0190"), ("554", 25, "03e8"),
    ("523", 10.1, "0194"),
])
def test_bolus_encoding(model, units, expect):
    assert params("Bolus", model, units=units).hex() == expect


@pytest.mark.parametrize("model,units,reason", [
    ("522", 0.05, "0.1 U step"), ("523", 1.03, "0.05 U step"), ("523", 1.025, "nearest: 1 or 1.05 U"), ("523", 10.05, "0.1 U step"),
    ("522", 25.1, "outside 0-25 U"), ("523", 0, "outside"), ("523", -1, "outside"),
])
def test_bolus_refusals(model, units, reason):
    with pytest.raises(errors.BadInput) as exc:
        params("Bolus", model, units=units)
    assert reason in str(exc.value)


def test_bolus_and_basal_steps_random():
    """Every multiple of the model's step encodes back to itself; anything off-step is refused."""
    rnd = random.Random(20240501)
    for _ in range(2000):
        model = rnd.choice(ALL[1:])
        strokes = rnd.randint(1, int(25 * model.bolus_strokes))
        units = strokes / model.bolus_strokes
        step = int(round(model.bolus_increment(units) * model.bolus_strokes))
        raw = params("Bolus", model, units=units) if strokes % step == 0 else None
        if raw is None:
            with pytest.raises(errors.BadInput):
                params("Bolus", model, units=units)
        else:
            assert int.from_bytes(raw, "big") / model.bolus_strokes == units
            assert len(raw) == (2 if model.larger else 1)
        if model.generation < 12:
            continue
        rate_strokes = rnd.randint(0, 35 * 40)
        rate = rate_strokes / 40.0
        step = int(round(model.basal_increment(rate) * 40))
        if rate_strokes % step:
            with pytest.raises(errors.BadInput):
                params("TempBasal", model, rate=rate, duration=30)
        else:
            raw = params("TempBasal", model, rate=rate, duration=30)
            assert int.from_bytes(raw[:2], "big") == rate_strokes and raw[2] == 1


def test_small_writes():
    assert params("PowerControl", "522", minutes=10) == bytes.fromhex("010a")
    assert params("PowerControl", "522", minutes=0) == bytes.fromhex("0000")
    assert params("PowerControl", "522") == bytes.fromhex("010a")
    assert params("SetSuspend", "515", suspend=True) == b"\x01"
    assert params("SetSuspend", "515", suspend=False) == b"\x00"
    assert params("SelectBasalProfile", "522", profile="b") == b"\x02"
    assert params("SelectBasalProfile", "522", profile="STD") == b"\x00"
    assert [params("KeypadPush", "522", key=k)[0] for k in ("easy", "ESC", "act", "UP", "down")] == [0, 1, 2, 3, 4]
    assert params("SetRTC", "522", clock=datetime.datetime(2024, 5, 1, 13, 45, 7)) == \
        bytes.fromhex("0d2d0707e80501")
    assert params("SetRTC", "522", clock="2015-04-29T20:14:58") == bytes.fromhex("140e3a07df041d")
    for bad in (dict(suspend="maybe"),):
        with pytest.raises(errors.BadInput):
            params("SetSuspend", "515", **bad)
    for call in (lambda: params("KeypadPush", "522", key="BOLUS"),
                 lambda: params("SelectBasalProfile", "522", profile="C"),
                 lambda: params("PowerControl", "522", minutes=256),
                 lambda: params("SetRTC", "522", clock="yesterday"),
                 lambda: params("SetRTC", "522",
                                clock=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
                 lambda: params("ReadRTC", "522", page=1)):
        with pytest.raises(errors.BadInput):
            call()


def test_page_params():
    assert params("ReadHistoryData", "522", page=3) == b"\x03"
    assert params("ReadGlucoseHistory", "522", page=1) == bytes.fromhex("00000001")
    assert params("ReadISIGHistory", "523", page=0x1234) == bytes.fromhex("00001234")
    with pytest.raises(errors.BadInput):
        params("ReadHistoryData", "522", page=256)
    assert params("FilterGlucoseHistory", "522", begin="2015-04-01", end=datetime.date(2015, 4, 29)) == \
        bytes.fromhex("07df040107df041d")


# --- decoders on the spec's example replies (§5.2-§5.6) -----------------------------------------

@pytest.mark.parametrize("model,hexstr,expect", [
    ("512", "17313407dd081c", "2013-08-28T23:49:52"), ("515", "12392307d60702", "2006-07-02T18:57:35"),
    ("522", "140e3a07df041d", "2015-04-29T20:14:58"), ("523", "103b3307de0311", "2014-03-17T16:59:51"),
    ("554", "17093907dd090a", "2013-09-10T23:09:57"), ("715", "0e2d0907dd0908", "2013-09-08T14:45:09"),
])
def test_rtc(model, hexstr, expect):
    assert decode("ReadRTC", pad(hexstr), model) == expect
    assert decode("ReadRTC", pad(hexstr), None) == expect


def test_rtc_garbage_is_an_error():
    with pytest.raises(errors.CommError):
        decode("ReadRTC", bytes(64), "522")


@pytest.mark.parametrize("model,hexstr,volts", [("512", "00008d", 1.41), ("515", "00008a", 1.38),
                                                ("554", "000086", 1.34), ("715", "00009b", 1.55)])
def test_battery(model, hexstr, volts):
    assert decode("ReadBatteryStatus", pad(hexstr), model) == {"status": "normal", "voltage": volts}
    assert decode("ReadBatteryStatus", pad("01" + hexstr[2:]), model)["status"] == "low"


@pytest.mark.parametrize("model,hexstr,units", [("512", "0390", 91.2), ("515", "03c0", 96.0),
                                                ("522", "0163", 35.5), ("554", "00000b41", 72.025),
                                                ("723", "000007bd", 49.525), ("715", "0bbb", 300.3)])
def test_reservoir(model, hexstr, units):
    assert decode("ReadRemainingInsulin", pad(hexstr), model) == units


def test_totals():
    assert decode("ReadTotalsToday", pad("01b0023d"), "522") == {"today": 43.2, "yesterday": 57.3}
    assert decode("ReadTotalsToday", pad("00670002"), "512") == {"today": 10.3, "yesterday": 0.2}
    assert decode("ReadTotalsToday", pad("000002750000047a"), "523") == {"today": 15.725, "yesterday": 28.65}
    assert decode("ReadTotalsToday", pad("000007c40000098a"), "554") == {"today": 49.7, "yesterday": 61.05}


def test_basal_temp():
    assert decode("ReadBasalTemp", pad("00000050003c"), "515") == {"temp": "absolute", "rate": 2.0, "duration": 60}
    assert decode("ReadBasalTemp", pad("0000004c"), "515") == {"temp": "absolute", "rate": 1.9, "duration": 0}
    assert decode("ReadBasalTemp", pad("016e0027001e"), "723") == {"temp": "percent", "rate": 110, "duration": 30}
    assert decode("ReadBasalTemp", pad("0000019000f0"), "523")["rate"] == 10.0   # 16-bit rate


def test_identity():
    assert decode("ReadPumpModel", pad("03353233"), None) == "523"
    assert decode("ReadPumpID", pad("323038383530"), "515") == "208850"
    assert decode("ReadFirmwareVersion", pad("56455220322e3441312e31200b0b"), "522") == "VER 2.4A1.1"
    assert decode("ReadRadioCtrlACL", pad("313233343536323133353436383231363530"), "515") == \
        ["123456", "213546", "821650"]
    assert decode("ReadRadioCtrlACL", pad("3038323233303430313837322d2d2d2d2d2d"), "554") == ["082230", "401872"]
    assert decode("ReadRadioCtrlACL", pad("2d" * 18), "522") == []


def test_status_and_state():
    assert decode("ReadPumpStatus", pad("03"), "515") == \
        {"status": "normal", "status_code": 3, "bolusing": False, "suspended": False}
    assert decode("ReadPumpStatus", pad("030101"), "523")["bolusing"] is True
    assert decode("ReadPumpStatus", pad("030001"), "523")["suspended"] is True
    assert decode("ReadPumpState", pad("03"), "515") == {"raw": pad("03").hex()}
    assert decode("ReadErrorStatus", pad(""), "515")["code"] == 0


def test_settings_515():
    s = decode("ReadSettings", pad("0003011400640050000001020100006400050014"), "515")
    assert (s["maxBolus"], s["maxBasal"], s["selected_pattern"], s["insulin_action_curve"]) == (10.0, 2.0, 2, 5)
    assert s["rf_enable"] is True and s["temp_basal"] == {"type": "Units/hour", "percent": 100}
    assert s["insulinConcentration"] == 100 and s["low_reservoir_warn_point"] == 20
    json.dumps(s)


def test_settings_522_and_x23_shift():
    s = decode("ReadSettings", pad("0004000501960050000000000000006401040014"), "522")
    assert (s["maxBolus"], s["maxBasal"], s["insulin_action_curve"]) == (15.0, 2.0, 4)
    s = decode("ReadSettings", pad("0002010101009600280000000000016401020014006401"), "523")
    assert (s["maxBolus"], s["maxBasal"], s["insulin_action_curve"]) == (15.0, 1.0, 2)
    assert "timeformat" not in s        # d8 is max basal's low byte on x23+
    s = decode("ReadSettings", pad("0a040102010064005001000001000164010401140064"), "554")
    assert (s["maxBolus"], s["maxBasal"], s["selected_pattern"], s["auto_off_duration_hrs"]) == (10.0, 2.0, 0, 10)
    s = decode("ReadSettings", pad("00020105010096005000000000000164010300140064"), "723")
    assert (s["maxBolus"], s["maxBasal"], s["insulin_action_curve"]) == (15.0, 2.0, 3)


def test_settings_x12_action_curve():
    block = bytearray(pad("0003011400640050000001020100006400050014"))
    block[17] = 0
    assert decode("ReadSettings", block, "512")["insulin_action_curve"] == 6
    block[17] = 1
    s = decode("ReadSettings", block, "512")
    assert s["insulin_action_curve"] == 8 and s["maxBolus"] == 10.0 and "keypad_lock_status" not in s


def test_basal_profile_spec_example():
    data = pad("30000024000428000e3c0016280020000000", 192)
    got = decode("ReadProfile_STD512", data, "515")
    assert [(e["start"], e["rate"]) for e in got] == [
        ("00:00:00", 1.2), ("02:00:00", 0.9), ("07:00:00", 1.0), ("11:00:00", 1.5), ("16:00:00", 1.0)]
    assert [e["minutes"] for e in got] == [0, 120, 420, 660, 960]


def test_basal_profile_rules():
    assert decode("ReadProfile_A512", pad("00003f", 192), "522") == []
    # 16-bit little-endian rates: 0x0118 = 280 -> 7.0 U/h (decocare read 0x18 -> 0.6)
    got = decode("ReadProfile_B512", pad("180100" "000000", 192), "523")
    assert got == [{"i": 0, "start": "00:00:00", "minutes": 0, "offset": 0, "rate": 7.0}]
    # a zero rate at midnight is a real entry; the end is the first all-zero entry after it
    got = decode("ReadProfile_B512", pad("000000" "040002" "08003f", 192), "515")
    assert [(e["rate"], e["minutes"]) for e in got] == [(0.0, 0), (0.1, 60)]


def test_carb_ratios_sensitivities_targets():
    r = decode("ReadCarbRatios", pad("01000a"), "515")
    assert r["units"] == "grams" and r["first"] == 1
    assert [(e["start"], e["ratio"], e["offset"]) for e in r["schedule"]] == [("00:00:00", 10, 0)]
    r = decode("ReadCarbRatios", pad("02000f0c08"), "522")
    assert r["units"] == "exchanges" and [e["ratio"] for e in r["schedule"]] == [1.5, 0.8]
    # x23: count then [start, hi, lo]; grams in 0.1 g/U, exchanges in 0.001 U/exch
    r = decode("ReadCarbRatios", pad("0102" "000096" "1401f4"), "523")
    assert [(e["start"], e["ratio"]) for e in r["schedule"]] == [("00:00:00", 15.0), ("10:00:00", 50.0)]
    r = decode("ReadCarbRatios", pad("0201" "0000c8"), "554")
    assert r["schedule"][0]["ratio"] == 0.2
    s = decode("ReadInsulinSensitivities", pad("010032"), "515")
    assert s["units"] == "mg/dL" and [e["sensitivity"] for e in s["sensitivities"]] == [50]
    s = decode("ReadInsulinSensitivities", pad("02401e0e19"), "522")   # 0x40 overflow bit, mmol
    assert [e["sensitivity"] for e in s["sensitivities"]] == [28.6, 2.5]
    assert s["sensitivities"][1]["start"] == "07:00:00"
    # offsets are minutes after midnight (oref0 compares them with the minutes of the day)
    assert [(e["x"], e["i"], e["offset"]) for e in s["sensitivities"]] == [(0, 0, 0), (1, 14, 420)]
    t = decode("ReadBGTargets", pad("01006464"), "515")
    assert t["units"] == "mg/dL" and [(e["low"], e["high"]) for e in t["targets"]] == [(100, 100)]
    t = decode("ReadBGTargets", pad("0200373c"), "523")
    assert [(e["low"], e["high"]) for e in t["targets"]] == [(5.5, 6.0)]
    t = decode("ReadBGTargets", pad("01006e1078"), "512")
    assert [(e["low"], e["high"], e["start"]) for e in t["targets"]] == [(110, 110, "00:00:00"), (120, 120, "08:00:00")]
    assert [e["offset"] for e in t["targets"]] == [0, 480]


def test_units_and_pages():
    assert decode("ReadCarbUnits", pad("02"), "515") == "exchanges"
    assert decode("ReadBGUnits", pad("02"), "515") == "mmol/L"
    assert decode("ReadCurPageNumber", pad("000001cb"), "723") == 459
    assert decode("ReadCurGlucosePageNumber", pad("0000000a0014000c"), "522") == {"page": 10, "glucose": 20, "isig": 12}
    page = bytearray(1024)
    page[1022:] = lib.crc16(page[:1022]).to_bytes(2, "big")
    assert decode("ReadHistoryData", page, "522")["crc_ok"] is True
    page[5] = 1
    assert decode("ReadHistoryData", page, "522")["crc_ok"] is False


def test_every_decoder_json_or_typed_error_random():
    """Random replies: every row decodes to JSON or raises CommError (no crash, no IndexError)."""
    rnd = random.Random(7)
    for row in COMMANDS:
        for model in ALL:
            if model not in row.models:
                continue
            for size in (row.reply_size or 1, 3):
                data = bytes(rnd.randrange(256) for _ in range(size))
                try:
                    json.dumps(decode(row.name, data, model))
                except errors.CommError:
                    pass


def test_decode_needs_model_where_layout_differs():
    with pytest.raises(errors.BadInput):
        decode("ReadRemainingInsulin", pad("0163"), None)


# --- Pump over a fake session ------------------------------------------------------------------

class FakeSession:
    """Answers from a dict opcode -> bytes (ReadPumpModel from ``model``); opcodes in ``nak``
    are refused with code 8."""

    def __init__(self, replies, nak=(), model=None):
        self.replies, self.nak, self.calls, self.wakes = dict(replies), set(nak), [], []
        if model is not None:
            self.replies.setdefault(0x8D, pad("%02x" % len(model) + model.encode().hex()))

    def execute(self, command, params=b"", validate=None, attempts=None):
        self.calls.append((command.name, bytes(params)))
        if command.opcode in self.nak:
            raise errors.Refused("pump refused %s (NAK 08)" % command.name, code=8)
        data = self.replies.get(command.opcode, bytes(command.reply_size))
        if validate:
            validate(data)
        return data

    def wake(self, probe, power_on, power_params):
        self.wakes.append((probe.name, power_on.name, power_params))
        return self.execute(probe)


def names(session):
    return [c[0] for c in session.calls]


def test_pump_model_read_once_and_cached():
    s = FakeSession({}, model="523")
    pump = Pump(s)
    assert pump.model.number == "523" and pump.model.number == "523"
    assert names(s) == ["ReadPumpModel"]
    with pytest.raises(errors.UnknownModel):
        Pump(FakeSession({}, model="999")).model


def test_the_pumps_model_is_the_truth():
    """--model is a claim: the pump's ReadPumpModel answer decides, and a disagreement is an
    error before anything else is sent (a 522 claim on a 523 would misread the reservoir)."""
    s = FakeSession({0x73: pad("0000" "1644")}, model="523")
    pump = Pump(s, model="522")
    with pytest.raises(errors.ModelMismatch, match="reports model 523"):
        pump.read("ReadRemainingInsulin")
    assert names(s) == ["ReadPumpModel"]
    assert Pump(FakeSession({0x73: pad("00001644")}, model="523"), model="523").read("ReadRemainingInsulin") == 142.5
    # the 508/511 answer no ReadPumpModel: only there the claim is taken, and nothing is asked
    s = FakeSession({})
    assert Pump(s, model="508").model.number == "508" and s.calls == []
    # a pump refusing ReadPumpModel without a claim: one line asking for --model, nothing more
    s = FakeSession({}, nak={0x8D})
    with pytest.raises(errors.BadInput, match="--model 508"):
        Pump(s).read("ReadRTC")
    assert names(s) == ["ReadPumpModel"]


def test_pages_need_no_model_read_but_never_lose_the_range():
    """A recorded download without ReadPumpModel replays (page reads have one meaning on every
    model), and ReadCurPageNumber is asked even when a wrong claim says the pump lacks it."""
    page = bytearray(1024)
    page[1022:] = lib.crc16(page[:1022]).to_bytes(2, "big")
    s = FakeSession({0x80: bytes(page), 0x9D: pad("00000007")}, model="523")
    pump = Pump(s, model="512")                        # wrong claim: a 512 keeps 32 pages, no 0x9D
    assert pump.cur_page_number() == 7 and pump.history_page(0) == bytes(page)
    assert names(s) == ["ReadCurPageNumber", "ReadHistoryData"]


def test_pump_read_and_gating():
    s = FakeSession({0x70: pad("140e3a07df041d"), 0x98: pad("00000050003c")}, model="522")
    pump = Pump(s, model="522")
    assert pump.read("ReadRTC") == "2015-04-29T20:14:58"
    assert pump.read("ReadBasalTemp")["rate"] == 2.0
    assert pump.raw("ReadRTC")[:2] == bytes.fromhex("140e")
    s.calls.clear()
    s512 = FakeSession({}, model="512")
    pump512 = Pump(s512, model="512")
    for name in ("ReadCurPageNumber", "ReadPumpStatus", "ReadContrast", "ReadGlucoseHistory"):
        with pytest.raises(errors.Unsupported):
            pump512.read(name)
    with pytest.raises(errors.Refused):
        pump.read("Bolus", units=1)         # writes are not sent from a read
    with pytest.raises(errors.Refused):
        pump.raw("TempBasal", rate=1, duration=30)
    assert s.calls == [] and names(s512) == ["ReadPumpModel"]      # nothing else was sent
    assert pump512.read("ReadSettings")["insulin_action_curve"] == 6
    assert s512.calls[-1] == ("ReadSettings512", b"")


def test_pump_read_all_reports_naks():
    s = FakeSession({0x70: pad("12392307d60702"), 0xC0: pad("0003011400640050000001020100006400050014")},
                    nak={0xC7}, model="515")
    result = Pump(s, model="515").read_all()
    sent = set(names(s))
    assert sent == {row.name for row in commands.reads_for("515")} | {"ReadPumpModel"}
    assert not any(by_name(n).write or by_name(n).kind == "page" for n in sent)
    assert "ReadCurGlucosePageNumber" not in result and "ReadHistoryData" not in result
    assert result["ReadFactoryParameters"]["code"] == 8
    assert result["ReadSettings"]["maxBolus"] == 10.0 and result["ReadRTC"] == "2006-07-02T18:57:35"
    json.dumps(result)
    x12 = Pump(FakeSession({0x70: pad("17313407dd081c")}, model="512"), model="512").read_all()
    assert "ReadSettings" in x12 and "ReadPumpStatus" not in x12   # logical name, sent as 0x91


def test_pump_pages_checked():
    good = bytearray(1024)
    good[1022:] = lib.crc16(good[:1022]).to_bytes(2, "big")
    s = FakeSession({0x80: bytes(good)}, model="522")
    pump = Pump(s, model="522")
    assert pump.history_page(3) == bytes(good)
    assert s.calls[-1] == ("ReadHistoryData", b"\x03")
    bad = bytearray(good)
    bad[0] ^= 1
    with pytest.raises(errors.CRCError):
        Pump(FakeSession({0x80: bytes(bad)}, model="522"), model="522").history_page(0)
    isig = bytearray(2048)
    isig[2046:] = lib.crc16(isig[:2045]).to_bytes(2, "big")
    s = FakeSession({0x9A: bytes(good), 0x9B: bytes(isig)}, model="522")
    assert Pump(s, model="522").glucose_page(7) == bytes(good)
    assert Pump(s, model="522").isig_page(7) == bytes(isig)
    assert s.calls == [("ReadGlucoseHistory", bytes.fromhex("00000007")), ("ReadISIGHistory", bytes.fromhex("00000007"))]
    with pytest.raises(errors.Unsupported):
        Pump(s, model="515").glucose_page(0)


@pytest.mark.parametrize("model,value,pages", [("522", 10, 11), ("523", 417, 36), ("515", 0, 1), ("554", 35, 36)])
def test_page_count(model, value, pages):
    assert Pump(FakeSession({0x9D: pad("%08x" % value)}, model=model), model=model).page_count() == pages


def test_page_count_x12_asks_its_model_then_nothing_more():
    s = FakeSession({}, nak={0x9D}, model="512")
    assert Pump(s).page_count() == 32 and names(s) == ["ReadCurPageNumber", "ReadPumpModel"]
    s = FakeSession({}, model="512")
    pump = Pump(s)
    assert pump.model.number == "512" and pump.page_count() == 32 and names(s) == ["ReadPumpModel"]


def test_ensure_awake():
    s = FakeSession({}, model="522")
    pump = Pump(s)
    pump.ensure_awake(minutes=5)
    assert s.wakes == [("ReadPumpModel", "PowerControl", bytes([1, 5]))] and pump.model.number == "522"
    with pytest.raises(errors.BadInput):
        pump.ensure_awake(minutes=300)
    with pytest.raises(errors.ModelMismatch):
        Pump(FakeSession({}, model="523"), model="522").ensure_awake()


# --- the doc and the CLI -----------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "decocare.commands"] + list(args), cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)


def test_cli_help_doc_and_errors():
    out = _cli("--help")
    assert out.returncode == 0 and "read and print everything" in out.stdout.lower()
    out = _cli("--doc")
    assert out.returncode == 0 and out.stdout == (ROOT / "docs" / "commands.md").read_text()
    out = _cli("/dev/nonexistent-decocare-port", "12345")
    assert out.returncode == 2 and "six digits" in out.stderr and "Traceback" not in out.stderr
    out = _cli("/dev/nonexistent-decocare-port", "208850")
    assert out.returncode == errors.EXIT_PORT and len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.parametrize("model", ["512", "515", "523"])
def test_cli_reads_everything_from_the_emulator(model, capsys):
    """End to end through link/stick/session against the emulated pump: every read the model has,
    nothing it lacks, no write sent."""
    pytest.importorskip("decocare.emulator")
    from decocare.emulator import Emulator
    emu = Emulator(model=model, serial="208850", timing="fast")
    try:
        assert commands_cli.main([emu.url, "208850", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["model"] == model and result["ReadPumpModel"] == model
        assert result["ReadPumpID"] == "208850"
        expected = {row.logical for row in commands.reads_for(model)}
        assert set(result) - {"model", "serial"} == expected
        assert ("ReadPumpStatus" in result) is (model != "512")
        assert result["ReadSettings"]["maxBolus"] > 0
        sent = [for_opcode(int(entry["opcode"], 16), model) for entry in emu.ledger]
        assert not any(row.write for row in sent)
        assert {row.name for row in sent} == {row.name for row in commands.reads_for(model)}
        assert commands_cli.main([emu.url, "208850", "--no-wake", "--model", model]) == 0
        text = capsys.readouterr().out
        assert text.startswith("# pump 208850, model %s" % model) and "## ReadSettings\n- " in text
    finally:
        emu.close()


class RefusesFirst(FakeSession):
    """Refuses the first ``n`` asks of each opcode in ``first`` (a stray NAK), then answers."""

    def __init__(self, replies, first, n=1, model=None):
        super().__init__(replies, model=model)
        self.left = {op: n for op in first}

    def execute(self, command, params=b"", validate=None, attempts=None):
        if self.left.get(command.opcode, 0) > 0:
            self.left[command.opcode] -= 1
            self.calls.append((command.name, bytes(params)))
            raise errors.Refused("pump refused %s (NAK 08)" % command.name, code=8)
        return super().execute(command, params, validate, attempts)


def test_a_stray_nak_on_the_model_or_page_range_is_asked_again():
    """One NAK must not end a whole download before it starts (issue 10's soak: nak faults)."""
    s = RefusesFirst({0x9D: pad("%08x" % 417)}, first={0x8D, 0x9D}, model="523")
    pump = Pump(s)
    pump.ensure_awake(10)
    assert pump.page_count() == 36
    assert names(s) == ["ReadPumpModel"] * 2 + ["ReadCurPageNumber"] * 2


def test_a_pump_that_keeps_refusing_is_believed_after_three_tries():
    s = RefusesFirst({}, first={0x9D}, n=99, model="523")
    pump = Pump(s, model="523")
    pump.ensure_awake(10)
    with pytest.raises(errors.Refused):
        pump.page_count()
    assert names(s).count("ReadCurPageNumber") == 3
    s = RefusesFirst({}, first={0x8D}, n=99, model="523")
    with pytest.raises(errors.Refused):
        Pump(s).ensure_awake(10)
    assert names(s) == ["ReadPumpModel"] * 3

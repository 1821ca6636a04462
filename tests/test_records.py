"""The record table, encoders and page builder on data the project makes itself.

Expected values come from the spec's worked examples (history.md §1.3, §1.4, §1.5) and from
unit arithmetic, not from the decoder's own output. Property tests use a seeded ``random``.
"""
import datetime
import pathlib
import random

import pytest

from decocare import history, records
from decocare.errors import BadInput, DecocareError, NotAPage, PartialPage
from decocare.lib import crc16

MODELS = ("512", "515", "522", "523", "554")
ROOT = pathlib.Path(__file__).resolve().parent.parent


def page_of(*recs):
    data = b"".join(recs)
    data += bytes(1022 - len(data))
    return data + crc16(data).to_bytes(2, "big")


# ------------------------------------------------------------------ spec worked examples


def test_bolus_doctest_example_x22():
    """history.md §1.3: 01 38 38 00 | dc 05 4f 12 0c = 5.6 U on 2012-12-18 15:05:28."""
    raw = bytes.fromhex("01383800dc054f120c")
    (rec,) = history.decode_page(page_of(raw), "522").records
    assert rec["timestamp"] == "2012-12-18T15:05:28"
    assert (rec["amount"], rec["programmed"], rec["duration"], rec["type"]) == (5.6, 5.6, 0, "normal")
    assert rec["_head"] == "01383800" and rec["_date"] == "dc054f120c"
    assert rec["_description"] == "Bolus 2012-12-18T15:05:28 head[4], body[0] op[0x01]"


def test_second_timestamp_example():
    assert records.parse_ts(bytes.fromhex("6fd7080106")) == datetime.datetime(2006, 7, 1, 8, 23, 47)
    buf = bytearray(5)
    records.put_ts(buf, 0, datetime.datetime(2006, 7, 1, 8, 23, 47))
    assert buf.hex() == "6fd7080106"


@pytest.mark.parametrize("raw, day, written, amount", [
    ("07000005260 78d".replace(" ", ""), "2013-01-07", "2013-01-08", 32.95),   # §1.4 worked example
    ("0700000 50cc30c".replace(" ", ""), "2012-12-03", "2012-12-04", 32.3),    # CareLink row
])
def test_daily_total_sums_its_date_and_is_stamped_when_written(raw, day, written, amount):
    """valid_date = the day summed up (CareLink's date); timestamp = 00:00 of the next day, when
    the pump writes the record (decocare 0.0.31's stamp, which oref0 relies on for order)."""
    (rec,) = history.decode_page(page_of(bytes.fromhex(raw)), "522").records
    assert rec["valid_date"] == day and rec["timestamp"] == written + "T00:00:00"
    assert rec["amount"] == pytest.approx(amount)
    # encoding from either key stores the same date
    again = history.encode_record("ResultDailyTotal", "522", amount=amount, valid_date=day)
    assert again == history.encode_record("ResultDailyTotal", "522", rec["timestamp"], amount=amount)
    assert history.encode_record("ResultDailyTotal", "522", **rec) == bytes.fromhex(raw)


def test_x23_bolus_is_in_fortieths():
    """§1.5: x23+ bolus fields are 2-byte big-endian counts of 0.025 U."""
    raw = history.encode_record("Bolus", "523", "2015-04-12T10:00:00",
                                programmed=2.525, amount=2.5, unabsorbed=1.0, duration=0)
    assert raw[:8].hex() == "01" "0065" "0064" "0028" "00"
    raw22 = history.encode_record("Bolus", "522", "2015-04-12T10:00:00", programmed=2.5, amount=2.5)
    assert raw22[:4].hex() == "01191900" and len(raw22) == 9


def test_values_the_record_cannot_hold_are_refused():
    with pytest.raises(BadInput):
        history.encode_record("Bolus", "522", amount=30.0)        # 300 tenths > one byte
    with pytest.raises(BadInput):
        history.encode_record("Bolus", "522", amount=0.025)       # not on the 0.1 U grid
    with pytest.raises(BadInput):
        history.encode_record("TempBasal", "522", rate=0.0125)
    with pytest.raises(BadInput):
        history.encode_record("Bolus", "522", amout=1.0)          # typo: unknown field
    with pytest.raises(BadInput):
        history.encode_record("NoSuchRecord", "522")


def test_temp_basal_pair_as_oref0_reads_it():
    when = datetime.datetime(2015, 5, 1, 12, 0, 0)
    page = page_of(history.encode_record("TempBasal", "523", when, temp="absolute", rate=1.35),
                   history.encode_record("TempBasalDuration", "523", when, **{"duration (min)": 90}))
    dur, rate = history.decode_page(page, "523").records
    assert (rate["_type"], rate["temp"], rate["rate"]) == ("TempBasal", "absolute", 1.35)
    assert dur["duration (min)"] == 90 and dur["timestamp"] == rate["timestamp"] == when.isoformat()


# ------------------------------------------------------------------ round trips, every type


def _random_record(rnd, rtype, model):
    """Random bytes laid out as ``rtype`` with a valid date, so decode must give dated fields."""
    lay = rtype.layout(model)
    if lay.length == "b1":
        n = rnd.randint(0, 20)
        raw = bytearray(rnd.randrange(256) for _ in range(2 + 3 * n))
        raw[1] = len(raw)
    else:
        raw = bytearray(rnd.randrange(256) for _ in range(lay.length))
        when = datetime.datetime(rnd.randint(2000, 2127), rnd.randint(1, 12), rnd.randint(1, 28),
                                 rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59))
        if rtype.date == "ts":
            records.put_ts(raw, lay.head, when)
        else:
            records.put_d2(raw, lay.head, when.date())
    raw[0] = rtype.op
    return bytes(raw)


def _fields(rec):
    return {k: v for k, v in rec.items() if k not in ("_head", "_date", "_body", "_description", "appended")}


def _decode_one(raw, model):
    model = history.as_model(model)
    rtype = records.BY_OP[raw[0]]
    lay = rtype.layout(model)
    if lay.length == "b1":
        lay = records.Layout(len(raw), len(raw), None)
    return history.decode_record(rtype, lay, raw, model)


@pytest.mark.parametrize("rtype", records.TABLE, ids=lambda t: "%02x-%s" % (t.op, t.name))
def test_encode_decode_round_trip_for_every_record_type(rtype):
    rnd = random.Random(rtype.op)
    for model in MODELS:
        for _ in range(40):
            raw = _random_record(rnd, rtype, history.as_model(model))
            rec = _decode_one(raw, model)
            # 1. the whole decoded record back to the very same bytes
            assert history.encode_record(**dict(rec, name=rec["_type"], model=model)) == raw
            # 2. the fields alone (from zeros) decode back to the same fields
            fields = _fields(rec)
            fields.pop("_type")
            again = _decode_one(history.encode_record(rtype.name, model, **fields), model)
            assert _fields(again) == _fields(rec), (model, raw.hex())
            # 3. the table documents every key the decoder produces
            extra = set(fields) - set(rtype.codec.keys) - {"timestamp", "valid_date"}
            assert not extra, extra


def test_unabsorbed_list_round_trip_with_high_bits():
    entries = [{"amount": 7.85, "age": 398}, {"amount": 0.025, "age": 0}, {"amount": 25.0, "age": 1023}]
    raw = history.encode_record("UnabsorbedInsulinBolus", "522", data=entries)
    assert len(raw) == 2 + 3 * 3 and raw[1] == len(raw)
    assert _decode_one(raw, "522")["data"] == entries


def test_basal_profile_schedule_is_kept_with_two_byte_rates():
    profile = [{"offset": 0, "rate": 0.9, "start": "00:00:00"},
               {"offset": 5 * 3600000, "rate": 7.5, "start": "05:00:00"}]    # 300 strokes > 255
    raw = history.encode_record("ChangeBasalProfile_new_profile", "554", "2015-04-05T12:17:45",
                                profile=profile)
    assert raw[7:13].hex() == "002400" "0a2c01"
    assert _decode_one(raw, "554")["profile"] == profile


def test_wizard_units_bits_decide_mmol_not_the_model():
    mgdl = history.encode_record("BolusWizard", "554", "2015-01-01T08:00:00", units="mgdl", bg=120)
    mmol = history.encode_record("BolusWizard", "522", "2015-01-01T08:00:00", units="mmol", bg=6.5,
                                 bg_target_low=5.0, bg_target_high=7.2, sensitivity=2.5)
    assert _decode_one(mgdl, "554")["bg"] == 120
    got = _decode_one(mmol, "522")
    assert (got["bg"], got["bg_target_low"], got["bg_target_high"], got["sensitivity"]) == (6.5, 5.0, 7.2, 2.5)


def test_negative_wizard_corrections():
    """CareLink shows negative corrections (-0.7 x22, -0.6 x23): the fields are signed."""
    for model, value in (("522", -0.7), ("523", -0.6), ("522", 9.9), ("523", 12.5)):
        raw = history.encode_record("BolusWizard", model, "2013-07-03T15:09:43", correction_estimate=value)
        assert _decode_one(raw, model)["correction_estimate"] == pytest.approx(value)


# ------------------------------------------------------------------ pages


def test_build_pages_packs_oldest_first_into_crc_valid_pages():
    rnd = random.Random(7)
    start = datetime.datetime(2015, 1, 1)
    made, expect = [], []
    for i in range(400):
        when = start + datetime.timedelta(minutes=7 * i)
        amount = rnd.randint(1, 250) / 10
        made.append(history.encode_record("Bolus", "522", when, programmed=amount, amount=amount))
        made.append(history.encode_record("BolusWizard", "522", when, bg=rnd.randint(40, 400),
                                          carb_input=rnd.randint(0, 200)))
        expect.append((when.isoformat(), amount))
    pages = history.build_pages(made, "522")
    assert len(pages) >= sum(len(r) for r in made) / 1022
    decoded = []
    for page in reversed(pages):          # page 0 is the newest: walk oldest page first
        assert len(page) == 1024 and crc16(page[:1022]) == int.from_bytes(page[1022:], "big")
        result = history.decode_page(page, "522")
        assert result.complete
        decoded += [(r["timestamp"], r["amount"]) for r in result.raw_order if r["_type"] == "Bolus"]
    assert decoded == expect
    assert history.decode_page(pages[0], "522").records[0]["timestamp"] == expect[-1][0]


def test_empty_history_is_one_empty_page():
    (page,) = history.build_pages([], "523")
    result = history.decode_page(page, "523")
    assert result.complete and result.records == []


def test_unknown_opcode_stops_the_page_and_says_where():
    good = history.encode_record("Rewind", "522", "2014-01-01T10:00:00")
    page = page_of(good, bytes.fromhex("ee0102030405"), good)
    with pytest.raises(PartialPage) as err:
        history.decode_page(page, "522")
    result = err.value.result
    assert result.partial_offset == 7 and result.unknown[0]["offset"] == 7
    assert result.unknown[0]["hex"] == "ee0102030405" + good.hex()
    assert result.unaccounted == 6 + len(good)
    assert [r["_type"] for r in result.records] == ["Rewind"]


def test_a_stray_zero_before_more_data_is_not_end_of_page():
    good = history.encode_record("Rewind", "522", "2014-01-01T10:00:00")
    result = history.decode_page(page_of(good, b"\0", good), "522", lenient=True)
    assert result.partial_offset == 7 and "0x00" in result.unknown[0]["reason"]


def test_sizes_that_cannot_be_a_page():
    for size in (0, 1023, 1025, 2048):
        with pytest.raises(NotAPage):
            history.decode_page(bytes(size), "522")


def test_crc_failure_is_partial_unless_lenient():
    page = bytearray(page_of(history.encode_record("Rewind", "522", "2014-01-01T10:00:00")))
    page[1023] ^= 1
    with pytest.raises(PartialPage):
        history.decode_page(bytes(page), "522")
    result = history.decode_page(bytes(page), "522", lenient=True)
    assert result.crc_ok is False and not result.complete and len(result.records) == 1


def test_random_pages_raise_only_typed_errors():
    rnd = random.Random(99)
    for _ in range(400):
        size = rnd.choice((1024, 1022, rnd.randint(0, 1100)))
        data = bytes(rnd.randrange(256) for _ in range(size))
        for model in MODELS:
            try:
                history.decode_page(data, model, lenient=rnd.random() < 0.5)
            except DecocareError:
                pass


def test_dual_wave_is_listed_newest_first_by_time():
    """x23 writes the square half first with a later time; listing it after the older normal
    half would make oref0 drop it (issue 2)."""
    square = history.encode_record("Bolus", "523", "2015-03-01T12:00:05", programmed=1.0, amount=1.0, duration=60)
    normal = history.encode_record("Bolus", "523", "2015-03-01T12:00:00", programmed=2.0, amount=2.0)
    result = history.decode_page(page_of(square, normal), "523")
    assert [r["timestamp"] for r in result.records] == ["2015-03-01T12:00:05", "2015-03-01T12:00:00"]
    assert [r["timestamp"] for r in result.raw_order] == ["2015-03-01T12:00:05", "2015-03-01T12:00:00"]


def test_clock_set_back_orders_by_timestamp_and_keeps_the_pair_together():
    """Newest first strictly by timestamp (what oref0 needs: it skips any record listed after
    an older one); ChangeTime/NewTimeSet stay adjacent, sorted at the earlier of their times."""
    enc = history.encode_record
    page = page_of(enc("Rewind", "522", "2013-07-09T21:50:00"),
                   enc("ChangeTime", "522", "2013-07-09T21:54:49"),
                   enc("NewTimeSet", "522", "2013-07-09T12:57:00"),
                   enc("Prime", "522", "2013-07-09T13:10:00", fixed=0.5, amount=0.5))
    records = history.decode_page(page, "522").records
    assert [r["_type"] for r in records] == ["Rewind", "Prime", "NewTimeSet", "ChangeTime"]
    # oref0's walk: a record newer than the last one kept is skipped; only ChangeTime may be.
    last, skipped = None, []
    for r in records:
        if last is not None and r["timestamp"] > last:
            skipped.append(r["_type"])
        else:
            last = r["timestamp"]
    assert skipped == ["ChangeTime"]


def test_unabsorbed_list_hangs_on_the_next_record_in_time():
    enc = history.encode_record
    wiz = enc("BolusWizard", "522", "2015-04-19T16:07:05", bg=120)
    iob = enc("UnabsorbedInsulinBolus", "522", data=[{"amount": 0.3, "age": 8}])
    late_square = enc("Bolus", "522", "2015-04-19T15:30:18", programmed=2.0, amount=2.0, duration=60)
    bolus = enc("Bolus", "522", "2015-04-19T16:07:06", programmed=2.5, amount=2.5)
    result = history.decode_page(page_of(wiz, iob, late_square, bolus), "522")
    host = result.records[0]
    assert host["amount"] == 2.5 and host["appended"][0]["data"] == [{"amount": 0.3, "age": 8}]


def test_list_opcodes_prints_the_generated_table():
    assert records.table_markdown() == (ROOT / "docs" / "records.md").read_text()

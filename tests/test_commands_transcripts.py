"""The catalogue held to real traffic: every TransmitPacket the real hosts (decocare and
Medtronic's CareLink) wrote resolves to a row for that pump's model with the same bytes, models
the pumps refused (NAK 08) are gated, and the real replies decode to the values the spec states."""
import collections
import json

import pytest

from decocare import commands, errors, frames, models
from decocare.commands import by_name, decode, for_opcode


def exchanges(path):
    """(Transmit, kind, data) for each pump command of a transcript whose reply arrived with good
    CRCs; multi-frame chunks are concatenated until EOD."""
    current, chunks = None, b""
    with open(path) as fh:
        for line in fh:
            op = json.loads(line)
            raw = bytes.fromhex(op["hex"])
            if op["dir"] == "w" and raw[:3] == b"\x01\x00\xa7":
                try:
                    current, chunks = frames.parse_transmit(raw), b""
                except ValueError:
                    current = None
            elif op["dir"] == "r" and raw[:2] == b"\x02\x00" and current is not None:
                try:
                    reply = frames.parse_radio_reply(raw)
                except errors.DecocareError:
                    continue
                if not (reply.header_crc_ok and reply.data_crc_ok and reply.serial == current.serial):
                    current = None
                    continue
                if reply.kind == frames.KIND_CHUNK:
                    chunks += reply.data
                    if not reply.eod:
                        continue
                    yield current, reply.kind, chunks
                else:
                    yield current, reply.kind, reply.data
                current = None


@pytest.fixture(scope="module")
def corpus(transcripts_dir):
    """{path: [(Transmit, kind, data)]}, all writes {path: [Transmit]}, and serial -> model as the
    pumps' own ReadPumpModel replies say (the majority answer, since a late reply can land there)."""
    replies, writes, votes = {}, {}, collections.defaultdict(collections.Counter)
    for path in sorted(transcripts_dir.glob("*.jsonl")):
        replies[path.name] = list(exchanges(path))
        writes[path.name] = []
        with open(path) as fh:
            for line in fh:
                op = json.loads(line)
                if op["dir"] == "w" and op["hex"].startswith("0100a7"):
                    try:
                        writes[path.name].append((frames.parse_transmit(bytes.fromhex(op["hex"])), op["hex"]))
                    except ValueError:
                        pass
        for transmit, kind, data in replies[path.name]:
            if transmit.opcode == 0x8D and kind == frames.KIND_FRAME:
                try:
                    votes[transmit.serial][models.get_model(decode("ReadPumpModel", data, None)).number] += 1
                except errors.DecocareError:
                    pass
    serials = {serial: counter.most_common(1)[0][0] for serial, counter in votes.items()}
    return replies, writes, serials


def captured(corpus, model, opcode, kind=frames.KIND_FRAME):
    """Every reply payload to ``opcode`` from pumps of ``model``."""
    replies, _, serials = corpus
    found = [data for items in replies.values() for t, k, data in items
             if t.opcode == opcode and k == kind and serials.get(t.serial) == model]
    if not found:
        pytest.skip("no captured 0x%02X reply for a %s" % (opcode, model))
    return found


def refused(corpus):
    """(model, opcode) pairs a real pump answered with NAK 08 "not supported" (pages excluded:
    page 36 is refused by page number, not by opcode)."""
    replies, _, serials = corpus
    return {(serials[t.serial], t.opcode) for items in replies.values() for t, k, data in items
            if k == frames.KIND_NAK and data[:1] == b"\x08" and t.opcode != 0x80 and t.serial in serials}


def test_models_known(corpus):
    assert corpus[2] == {"047006": "512", "208850": "515", "578398": "522", "665455": "522",
                         "736868": "523", "389877": "715"}


def test_every_captured_transmit_resolves_and_reencodes(corpus):
    """Each TransmitPacket resolves to a row for its pump's model; re-encoded with the row's
    frames/retries/button it is byte-identical, except where we deliberately differ (documented)."""
    _, writes, serials = corpus
    naks = refused(corpus)
    checked, differ = 0, collections.Counter()
    for items in writes.values():
        for transmit, hexstr in items:
            model = serials.get(transmit.serial)
            if model is None:
                continue
            if (model, transmit.opcode) in naks:
                with pytest.raises(errors.Unsupported):
                    for_opcode(transmit.opcode, model)
                continue
            row = for_opcode(transmit.opcode, model)
            again = frames.encode_transmit(transmit.serial, row.opcode, transmit.params, row.frames,
                                           row.retries, row.button)
            checked += 1
            if again.hex() != hexstr[:len(again) * 2]:
                differ[(row.name, transmit.retries, transmit.frames)] += 1
    assert checked > 500
    # vendor SetSuspend goes with stick retries 2: every write of ours uses 0 (spec §7.3); the
    # vendor reads ReadPumpStatus with retries 0 where every read of ours (and decocare's) uses 2;
    # two old decocare logs sent PowerControl with frames 1.
    assert set(differ) <= {("SetSuspend", 2, 0), ("ReadPumpStatus", 0, 1), ("PowerControl", 0, 1)}, differ


def test_captured_params_reencode(corpus):
    _, writes, serials = corpus
    naks = refused(corpus)
    seen = collections.Counter()
    for items in writes.values():
        for t, _ in items:
            model = serials.get(t.serial)
            if model is None or (model, t.opcode) in naks:
                continue
            row = for_opcode(t.opcode, model)
            if row.name == "ReadHistoryData":
                assert commands.params(row.name, model, page=t.params[0]) == t.params
            elif row.name == "PowerControl":
                assert commands.params(row.name, model, minutes=t.params[1]) == t.params
            elif row.name == "SetSuspend":
                assert commands.params(row.name, model, suspend=bool(t.params[0])) == t.params
            elif row.name == "TempBasal":
                assert commands.params(row.name, model, rate=2.0, duration=60) == t.params
            else:
                assert t.params == b"", row.name
            seen[row.name] += 1
    assert seen["TempBasal"] == 1 and seen["SetSuspend"] >= 10 and seen["PowerControl"] > 20


def test_refused_opcodes_are_gated(corpus):
    """Every non-page opcode a real pump answered with NAK 08 is one our table refuses for it."""
    naks = refused(corpus)
    assert ("512", 0x9D) in naks and ("512", 0xC0) in naks and ("512", 0xC3) in naks
    for model, opcode in naks:
        with pytest.raises(errors.Unsupported):
            for_opcode(opcode, model)


def test_every_captured_reply_decodes(corpus):
    replies, _, serials = corpus
    count = 0
    for items in replies.values():
        for t, kind, data in items:
            model = serials.get(t.serial)
            if model is None or kind not in (frames.KIND_FRAME, frames.KIND_CHUNK):
                continue
            row = for_opcode(t.opcode, model)
            if len(data) != row.reply_size:
                continue            # a stalled page or a late reply
            try:
                json.dumps(decode(row.name, data, model))
            except errors.CommError:
                assert row.name == "ReadRTC", (row.name, data.hex())   # a late/empty reply
            count += 1
    assert count > 150


def test_identity_matches_the_packets(corpus):
    replies, _, serials = corpus
    for items in replies.values():
        for t, kind, data in items:
            if t.opcode == 0x71 and kind == frames.KIND_FRAME and t.serial in serials and any(data):
                assert decode("ReadPumpID", data, serials[t.serial]) == t.serial


@pytest.mark.parametrize("model,expect", [
    ("512", "2013-08-28T23:49:52"), ("515", "2006-07-02T18:57:35"), ("522", "2015-04-29T20:14:58"),
    ("523", "2015-03-29T22:33:26"), ("715", "2013-09-08T14:45:09")])
def test_rtc(corpus, model, expect):
    assert expect in [decode("ReadRTC", d, model) for d in captured(corpus, model, 0x70) if any(d)]


@pytest.mark.parametrize("model,battery,reservoir,firmware", [
    ("512", 1.41, 91.2, "VER 1.3B1.1"), ("515", 1.38, 96.0, "VER 2.1A1.1"), ("522", 1.19, 35.5, "VER 2.4A1.1"),
    ("523", 1.25, 106.7, "VER 2.5A1.1"), ("715", 1.55, 300.3, "VER 2.1A1.1")])
def test_battery_reservoir_firmware(corpus, model, battery, reservoir, firmware):
    assert {"status": "normal", "voltage": battery} in [decode("ReadBatteryStatus", d, model)
                                                        for d in captured(corpus, model, 0x72)]
    assert reservoir in [decode("ReadRemainingInsulin", d, model) for d in captured(corpus, model, 0x73)]
    assert firmware in [decode("ReadFirmwareVersion", d, model) for d in captured(corpus, model, 0x74)]


def test_515_vendor_upload_values(corpus):
    settings = decode("ReadSettings", captured(corpus, "515", 0xC0)[0], "515")
    assert (settings["maxBolus"], settings["maxBasal"], settings["selected_pattern"],
            settings["insulin_action_curve"], settings["rf_enable"]) == (10.0, 2.0, 2, 5, True)
    std = decode("ReadProfile_STD512", captured(corpus, "515", 0x92, frames.KIND_CHUNK)[0], "515")
    assert [(e["start"], e["rate"]) for e in std] == [
        ("00:00:00", 1.2), ("02:00:00", 0.9), ("07:00:00", 1.0), ("11:00:00", 1.5), ("16:00:00", 1.0)]
    b = decode("ReadProfile_B512", captured(corpus, "515", 0x94, frames.KIND_CHUNK)[0], "515")
    assert b[0] == {"i": 0, "start": "00:00:00", "minutes": 0, "offset": 0, "rate": 0.0} and len(b) > 10
    assert decode("ReadCarbRatios", captured(corpus, "515", 0x8A)[0], "515")["schedule"][0]["ratio"] == 10
    assert decode("ReadInsulinSensitivities", captured(corpus, "515", 0x8B)[0], "515")["sensitivities"][0][
        "sensitivity"] == 50
    target = decode("ReadBGTargets", captured(corpus, "515", 0x9F)[0], "515")["targets"][0]
    assert (target["low"], target["high"]) == (100, 100)
    assert decode("ReadPumpStatus", captured(corpus, "515", 0xCE)[0], "515")["status"] == "normal"
    assert decode("ReadCurPageNumber", captured(corpus, "515", 0x9D)[0], "515") == 7
    assert decode("ReadRadioCtrlACL", captured(corpus, "515", 0x76)[0], "515") == ["123456", "213546", "821650"]
    assert decode("ReadCarbUnits", captured(corpus, "515", 0x88)[0], "515") == "grams"
    assert decode("ReadBGUnits", captured(corpus, "515", 0x89)[0], "515") == "mg/dL"


def test_temp_basal_readback(corpus):
    assert {"temp": "absolute", "rate": 2.0, "duration": 60} in [
        decode("ReadBasalTemp", d, "515") for d in captured(corpus, "515", 0x98)]


def test_totals_and_pages(corpus):
    assert {"today": 43.2, "yesterday": 57.3} in [decode("ReadTotalsToday", d, "522")
                                                  for d in captured(corpus, "522", 0x79)]
    # x23: two 32-bit values in 0.025 U [INF]
    assert {"today": 40.775, "yesterday": 55.35} in [decode("ReadTotalsToday", d, "523")
                                                     for d in captured(corpus, "523", 0x79)]
    assert 10 in [decode("ReadCurPageNumber", d, "522") for d in captured(corpus, "522", 0x9D)]
    assert 417 in [decode("ReadCurPageNumber", d, "523") for d in captured(corpus, "523", 0x9D)]
    pages = captured(corpus, "523", 0x80, frames.KIND_CHUNK)
    assert all(decode("ReadHistoryData", p, "523")["crc_ok"] for p in pages if len(p) == 1024)


def test_x23_settings_captured(corpus):
    s = decode("ReadSettings", captured(corpus, "523", 0xC0)[0], "523")
    assert (s["maxBolus"], s["maxBasal"], s["insulin_action_curve"]) == (14.0, 2.0, 4)
    s = decode("ReadSettings", captured(corpus, "522", 0xC0)[0], "522")
    assert (s["maxBolus"], s["maxBasal"], s["insulin_action_curve"]) == (15.0, 2.0, 4)


def test_temp_basal_packet_byte_identical(corpus):
    _, writes, _ = corpus
    [(t, hexstr)] = [w for w in writes["analysis__set-temp-basal.markdown.jsonl"] if w[0].opcode == 0x4C]
    row = by_name("TempBasal")
    packet = frames.encode_transmit("208850", row.opcode, commands.params("TempBasal", "515", rate=2.0, duration=60),
                                    row.frames, row.retries, row.button)
    assert packet.hex() == hexstr == "0100a701208850800300000100" + "4c86005002" + "8c"

"""The emulated stick + pump at the byte level, driven by a minimal host written here (the
emulator must not be checked with the client it serves), and held to the real captures."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import serial

from decocare import cgm, commands, frames, history
from decocare.emulator import Emulator, generate
from decocare.frames import KIND_ACK, KIND_CHUNK, KIND_FRAME, KIND_NAK, KIND_TIMEOUT
from decocare.lib import crc16

from conftest import ROOT, shared_path


class Host:
    """Just enough of a host: one command, one answer; poll ReadStatus; ReadRadio its size."""

    def __init__(self, emu, serial_number=None):
        self.emu = emu
        self.serial = serial_number or emu.pump.serial

    def x(self, cmd, size=64, timeout=0.5):
        self.emu.write(cmd)
        return self.emu.read(size, timeout)

    def stick(self, name, param=0):
        return self.x(frames.stick_command(name, param))

    def status(self):
        return frames.parse_status(self.stick("ReadStatus"))

    def radio_stats(self):
        return frames.parse_interface_stats(self.stick("InterfaceStats", 0))

    def send(self, opcode, params=b"", frames_byte=1, retries=2, button=0):
        return self.x(frames.encode_transmit(self.serial, opcode, params, frames=frames_byte,
                                             retries=retries, button=button))

    def reply(self, max_polls=400):
        """The next ReadRadio answer (raw bytes) once ReadStatus says one is ready."""
        for _ in range(max_polls):
            size = frames.ready_size(self.status())
            if size:
                return self.x(frames.encode_read_radio(size), size)
            time.sleep(0.001)
        return None

    def command(self, opcode, params=b"", frames_byte=1, retries=2):
        """(last radio reply, all data) of one pump command."""
        self.send(opcode, params, frames_byte, retries)
        data = b""
        while True:
            r = frames.parse_radio_reply(self.reply())
            assert r.header_crc_ok and r.data_crc_ok
            data += r.data
            if r.eod:
                return r, data

    def read(self, name, **values):
        model = self.emu.pump.model
        row = commands.resolve(name, model)
        r, data = self.command(row.opcode, commands.params(name, model, **values) if values else b"",
                               row.frames)
        return r, data


@pytest.fixture
def emu():
    with Emulator(model="523", serial="736868") as e:
        yield e


def transcript(name):
    path = shared_path("fixtures", "transcripts", name)
    with open(path) as fh:
        return [json.loads(line) for line in fh]


PAGES_736868 = ("fixtures", "carelink", "tree", "analysis", "736868", "logs")


# --- stick framing --------------------------------------------------------------------------

def test_product_info_is_the_captured_one():
    ops = transcript("analysis__736868__logs__commands.log.jsonl")
    with Emulator(model="523", serial="736868", stick_serial="080e00") as e:
        assert Host(e).stick("ProductInfo").hex() == ops[1]["hex"]


def test_every_answer_is_64_bytes_and_keeps_the_stale_tail(emu):
    h = Host(emu)
    h.stick("ProductInfo")
    info = bytes(emu.stick.buf)
    sig = h.stick("SignalStrength")
    assert sig[:3] == b"\x01\x55\x00" and sig[4:] == info[4:]          # owns bytes 0-3
    r, _ = h.command(0x8D)                                              # ReadPumpModel
    last = bytes(emu.stick.buf)
    tx = h.send(0x70)                                                    # owns bytes 0-2
    assert len(tx) == 64 and tx[:3] == b"\x01\x55\x00" and tx[3:] == last[3:]
    st = h.stick("ReadStatus")                                           # owns bytes 0-10
    assert st[8:11] == b"\x05\x04\x00" and st[11:] == last[11:]
    usb = h.stick("InterfaceStats", 1)
    radio = h.stick("InterfaceStats", 0)
    assert len(usb) == len(radio) == 64
    assert usb[25:] == st[25:]                                           # USB stats own 0-24


def test_the_same_stale_tail_relations_hold_in_the_capture():
    """What the previous test asserts of the emulator, checked on the real transcript."""
    ops = transcript("analysis__736868__logs__commands.log.jsonl")
    prev = None
    checked = 0
    for w, r in zip(ops[::2], ops[1::2]):
        data = bytes.fromhex(r["hex"])
        if prev is not None and w["hex"].startswith("0100a7"):
            assert data[3:] == prev[3:64]
            checked += 1
        if prev is not None and w["hex"] == "030000":
            assert data[11:] == prev[11:64]
        prev = data
    assert checked > 10


def test_status_flags_and_sizes(emu):
    h = Host(emu)
    st = h.status()
    assert (st.flags, st.size) == (0, 0)
    h.send(0x80, b"\x00", frames.FRAMES_MANY)
    assert h.status().flags == frames.STATUS_RECEIVING
    seen, sizes, data = set(), [], b""
    while True:
        st = h.status()
        seen.add(st.flags)
        if st.flags & frames.STATUS_READY:
            sizes.append(st.size)
            r = frames.parse_radio_reply(h.x(frames.encode_read_radio(st.size), st.size))
            assert r.kind == KIND_CHUNK and len(r.data) == st.size - 14
            data += r.data
            if r.eod:
                break
        else:
            time.sleep(0.0005)
    assert data == emu.pump.history.page(0) and len(data) == 1024
    assert all((s - 14) % 64 == 0 for s in sizes)
    assert h.status().flags == 0


def test_single_frame_ack_nak_and_timeout_kinds(emu):
    h = Host(emu)
    r, data = h.command(0x8D)
    assert (r.kind, r.length, r.eod, data[:4]) == (KIND_FRAME, 64, True, b"\x03523")
    h.send(0x4C, b"\x00\x28\x01", 1, 0)                      # TempBasal 1.0 U/h 30 min
    raw = h.reply()
    assert len(raw) == 15 and frames.parse_radio_reply(raw).kind == KIND_ACK
    h.send(0x80, b"\x24", frames.FRAMES_MANY)                # page 36 -> NAK 08
    r = frames.parse_radio_reply(h.reply())
    assert (r.kind, r.data) == (KIND_NAK, b"\x08")
    h.serial = "123456"                                      # nobody answers to that serial
    h.send(0x8D)
    raw = h.reply()
    r = frames.parse_radio_reply(raw)
    assert len(raw) == 14 and (r.kind, r.retries, r.rssi, r.eod) == (KIND_TIMEOUT, 2, 0, True)


def test_read_radio_zero_and_power_control_off_get_no_answer(emu):
    h = Host(emu)
    assert h.x(frames.encode_read_radio(0), 64, timeout=0.05) == b""
    emu.write(frames.encode_transmit("736868", 0x5D, b"\x00\x00", frames=0, retries=0, button=0x55))
    assert emu.read(64, 0.05) == b""
    assert h.stick("SignalStrength")[:3] == b"\x01\x55\x00"   # the next command gets its own answer
    h.send(0x8D)
    assert frames.parse_radio_reply(h.reply()).kind == KIND_TIMEOUT   # radio is off now


def test_two_and_three_byte_commands(emu):
    emu.write(b"\x04\x00")
    a = emu.read(64, 0.5)
    emu.write(b"\x04\x00\x00\x03\x00")
    b, c = emu.read(64, 0.5), emu.read(64, 0.5)
    assert a == b and a[9:19] == b"ComLink II" and c[:3] == b"\x01\x55\x00" and c[4] == 2


def test_radio_counters(emu):
    h = Host(emu)
    s0 = h.radio_stats()
    h.command(0x8D)
    s1 = h.radio_stats()
    assert (s1["transmitted"] - s0["transmitted"], s1["received"] - s0["received"]) == (1, 1)
    h.command(0x4C, b"\x00\x28\x01")
    s2 = h.radio_stats()
    assert (s2["transmitted"] - s1["transmitted"], s2["received"] - s1["received"]) == (2, 2)
    h.command(0x80, b"\x00", frames.FRAMES_MANY)
    s3 = h.radio_stats()
    assert (s3["transmitted"] - s2["transmitted"], s3["received"] - s2["received"]) == (18, 17)


def test_captured_counter_deltas_match_the_emulator_rules():
    """The rules above (read 1/1, page 18/17) are those of the 736868 capture."""
    ops = transcript("analysis__736868__logs__session.log.jsonl")
    stats = [frames.parse_interface_stats(bytes.fromhex(r["hex"]))
             for w, r in zip(ops[::2], ops[1::2]) if w["hex"] == "050000"]
    deltas = [(b["transmitted"] - a["transmitted"], b["received"] - a["received"])
              for a, b in zip(stats, stats[1:])]
    assert deltas == [(2, 2), (1, 1), (18, 17)]      # PowerControl, ReadPumpModel, page 0


# --- golden transcripts replayed --------------------------------------------------------------

def replay(emu, ops):
    """Send the captured host writes; yield (write, captured read, emulator read)."""
    for w, r in zip(ops[::2], ops[1::2]):
        cmd = bytes.fromhex(w["hex"])
        want = bytes.fromhex(r["hex"])
        if cmd[0] == 0x03:                # poll until as ready as captured (frames arrive at our pace)
            for _ in range(2000):
                got = Host(emu).x(cmd)
                if (got[5] & 1) == (want[5] & 1) and got[6:8] >= want[6:8]:
                    break
                time.sleep(0.0005)
        elif cmd[0] == 0x0C:
            got = Host(emu).x(cmd, len(want))
        else:
            got = Host(emu).x(cmd)
        yield cmd, want, got


def test_replay_commands_log_of_a_523():
    ops = transcript("analysis__736868__logs__commands.log.jsonl")
    same_state = {0x8D, 0x71, 0x74, 0x76, 0x9D, 0xC3, 0x80}
    with Emulator(model="523", serial="736868", pages=shared_path(*PAGES_736868), cur_page=417,
                  firmware="VER 2.5A1.1 ", stick_serial="080e00") as e:
        opcode, compared, stats = None, 0, []
        for cmd, want, got in replay(e, ops):
            assert len(got) == len(want)
            if cmd[0] == 0x01:
                opcode = cmd[13]
            if cmd[0] == 0x0C:
                rw, rg = frames.parse_radio_reply(want), frames.parse_radio_reply(got)
                assert (rg.kind, rg.eod, rg.length, rg.serial, rg.retries) == \
                       (rw.kind, rw.eod, rw.length, rw.serial, rw.retries)
                assert rg.header_crc_ok and rg.data_crc_ok
                if opcode in same_state:
                    assert rg.data == rw.data, hex(opcode)
                    compared += 1
            elif cmd[0] == 0x03:
                assert got[:5] == want[:5] and got[8:11] == want[8:11]
                assert got[5] & 1 == want[5] & 1
                if got[5] & 1 and opcode != 0x80:    # page frames pile up at another pace
                    assert got[6:8] == want[6:8]
            elif cmd[0] == 0x05 and cmd[1] == 0:
                stats.append((frames.parse_interface_stats(want), frames.parse_interface_stats(got)))
            elif cmd[0] == 0x04:
                assert got == want
            else:
                assert got[:3] == want[:3]
        assert compared >= 8
        (w0, g0), (w1, g1) = stats[0], stats[-1]
        for key in ("transmitted", "received"):
            assert g1[key] - g0[key] == w1[key] - w0[key]


def test_replay_download_log_serves_every_page_byte_identical():
    ops = transcript("analysis__736868__logs__download.log.jsonl")
    folder = shared_path(*PAGES_736868)
    with Emulator(model="523", serial="736868", pages=folder, cur_page=417) as e:
        page, pages, naks = None, {}, []
        for cmd, want, got in replay(e, ops):
            if cmd[0] == 0x01:
                page, buf = cmd[15], b""
            if cmd[0] == 0x0C:
                rw, rg = frames.parse_radio_reply(want), frames.parse_radio_reply(got)
                assert (rg.kind, rg.eod, rg.data) == (rw.kind, rw.eod, rw.data)
                if rg.kind == KIND_NAK:
                    naks.append((page, rg.data))
                elif rg.kind == KIND_CHUNK:
                    buf += rg.data
                    if rg.eod:
                        pages[page] = buf
    for n in range(36):
        with open(os.path.join(str(folder), "ReadHistoryData-page-%d.data" % n), "rb") as fh:
            assert pages[n] == fh.read()
    assert naks and all(code == b"\x08" for _, code in naks)


@pytest.mark.parametrize("model", ["515", "522", "554", "512"])
def test_seeded_pages_of_each_model_are_served_byte_identical(model, page_index, tmp_path):
    """Real pages from ../shared/fixtures/pages (grouped by pump), re-served as pages 0..N."""
    pages = [p for p in page_index if p["kind"] == "pump_history" and p["condition"] == "complete"
             and (p.get("pump") or {}).get("model") == model]
    if not pages:
        pytest.skip("no complete real pages of a %s" % model)
    serial_number = pages[0]["pump"]["serial"]
    pages = [p for p in pages if p["pump"]["serial"] == serial_number][:6]
    blobs = []
    for n, p in enumerate(pages):
        with open(shared_path("fixtures", "pages", p["bin"]), "rb") as fh:
            blobs.append(fh.read())
        (tmp_path / ("ReadHistoryData-page-%d.data" % n)).write_bytes(blobs[-1])
    with Emulator(model=model, serial=serial_number, pages=str(tmp_path)) as e:
        h = Host(e)
        _, cur = h.read("ReadCurPageNumber") if commands.supported("ReadCurPageNumber", model) else (None, None)
        if cur is not None:
            assert int.from_bytes(cur[:4], "big") == len(blobs) - 1
        for n, blob in enumerate(blobs):
            assert h.read("ReadHistoryData", page=n)[1] == blob
        h.send(0x80, bytes([len(blobs)]), frames.FRAMES_MANY)
        r = frames.parse_radio_reply(h.reply())
        assert r.kind == KIND_NAK and r.data == (b"\x0d" if len(blobs) < e.pump.model.history_pages else b"\x08")


# --- the pump: reads decoded by the client's decoders -------------------------------------------

@pytest.mark.parametrize("model", ["508", "511", "512", "515", "522", "523", "554", "722"])
def test_every_supported_read_is_answered_and_decodes(model):
    with Emulator(model=model, serial="123456") as e:
        h = Host(e)
        answered = 0
        rows = {commands.resolve(r.name, model) for r in commands.COMMANDS
                if r.kind == "read" and not r.write and commands.supported(r.name, model)}
        for row in sorted(rows, key=lambda r: r.opcode):
            if row.name in ("ReadHistoryData", "ReadGlucoseHistory", "ReadISIGHistory", "ReadVCNTRHistory",
                            "FilterGlucoseHistory", "FilterISIGHistory"):
                continue
            r, data = h.command(row.opcode, b"", row.frames)
            assert r.kind in (KIND_FRAME, KIND_CHUNK), row.name
            assert len(data) == row.reply_size, row.name
            if row.decoder is not None:
                commands.decode(row.name, data, model)
            answered += 1
        assert answered >= 5


def test_reads_decode_back_to_the_pump_state():
    with Emulator(model="523", serial="736868") as e:
        h, p = Host(e), e.pump
        dec = lambda name: commands.decode(name, h.read(name)[1], "523")
        assert dec("ReadPumpModel") == "523"
        assert dec("ReadPumpID") == "736868"
        assert dec("ReadRemainingInsulin") == p.reservoir
        assert dec("ReadBatteryStatus")["voltage"] == p.battery_volts
        s = dec("ReadSettings")
        assert (s["maxBolus"], s["maxBasal"], s["selected_pattern"]) == (10.0, 2.0, 0)
        assert commands.decode("ReadRTC", h.read("ReadRTC")[1], "523")[:16] == p.now().isoformat()[:16]
        profile = dec("ReadProfile_STD512")
        assert [round(x["rate"], 3) for x in profile] == [r for _, r in p.profiles[0]]
        assert dec("ReadCurPageNumber") == p.history.cur_page_number()


def test_unsupported_command_is_nak_08():
    with Emulator(model="512", serial="047006") as e:
        h = Host(e)
        for opcode in (0x9D, 0xC0, 0xC3):           # what the captured 512 refused
            h.send(opcode)
            r = frames.parse_radio_reply(h.reply())
            assert (r.kind, r.data) == (KIND_NAK, b"\x08")


# --- generated history --------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["512", "515", "522", "523", "554"])
def test_generated_history_decodes_to_the_generated_records(model):
    with Emulator(model=model, serial="123456", seed=7) as e:
        events = generate.events(model, e.pump.start, seed=7, weeks=3)
        h = Host(e)
        n = 0
        decoded = []
        while e.pump.history.page(n) is not None:
            page = h.read("ReadHistoryData", page=n)[1]
            assert crc16(page[:1022]) == int.from_bytes(page[1022:], "big")
            decoded = history.decode_page(page, model).raw_order + decoded
            n += 1
        assert [d["_type"] for d in decoded] == [ev[0] for ev in events]
        for d, (name, when, fields) in zip(decoded, events):
            if name == "Bolus":
                assert d["amount"] == pytest.approx(fields["amount"]) and d["timestamp"] == when.isoformat()
            if name == "TempBasal":
                assert d["rate"] == pytest.approx(fields["rate"])


@pytest.mark.parametrize("model", ["522", "554"])
def test_generated_glucose_pages_decode_to_the_generated_values(model):
    """A CGM pump without seeded pages still has glucose history: every page the emulator reports
    (ReadCurGlucosePageNumber) is served CRC-valid and decodes to the generated sensor values."""
    with Emulator(model=model, serial="123456", seed=5, weeks=1) as e:
        h = Host(e)
        cur = commands.decode("ReadCurGlucosePageNumber", h.read("ReadCurGlucosePageNumber")[1], model)
        assert cur["glucose"] >= 2 and cur["page"] == max(e.pump.glucose)
        values = []
        for n in range(cur["page"], cur["page"] - cur["glucose"], -1):
            page = h.read("ReadGlucoseHistory", page=n)[1]
            decoded = cgm.decode_page(page, model)
            assert decoded.complete and decoded.crc_ok
            values += [(r["date"], r["sgv"]) for r in decoded.records if "sgv" in r]
        expected = generate.glucose_values(e.pump.start, seed=5, weeks=1)
        assert sorted(values) == sorted((t.isoformat(), v) for t, v in expected)
        assert max(values)[0] <= e.pump.start.isoformat()


def test_pumps_without_cgm_have_no_glucose_pages():
    with Emulator(model="515", serial="123456") as e:
        assert e.pump.glucose == {}


def test_generated_history_is_deterministic():
    a = generate.encode("523", generate.events("523", Emulator(model="523").pump.start, seed=3))
    with Emulator(model="523", seed=3) as e:
        b = generate.encode("523", generate.events("523", e.pump.start, seed=3))
    assert a == b and len(a) > 100


# --- writes ----------------------------------------------------------------------------------------

def newest(emu, host, name):
    recs = history.decode_page(host.read("ReadHistoryData", page=0)[1], emu.pump.model).raw_order
    return [r for r in recs if r["_type"] == name]


def test_temp_basal_sets_state_history_and_ledger(emu):
    h = Host(emu)
    r, _ = h.command(0x4C, commands.params("TempBasal", "523", rate=1.5, duration=60))
    assert r.kind == KIND_ACK
    temp = commands.decode("ReadBasalTemp", h.read("ReadBasalTemp")[1], "523")
    assert temp["rate"] == 1.5 and temp["duration"] in (59, 60)
    assert newest(emu, h, "TempBasal")[-1]["rate"] == 1.5
    assert newest(emu, h, "TempBasalDuration")[-1]["duration (min)"] == 60
    entry = emu.ledger.deliveries("TempBasal")[-1]
    assert (entry["rate"], entry["duration"], entry["reply"]) == (1.5, 60, "ack")
    h.command(0x4C, commands.params("TempBasal", "523", rate=0, duration=0))       # cancel
    assert commands.decode("ReadBasalTemp", h.read("ReadBasalTemp")[1], "523")["duration"] == 0
    emu.advance(3600)


def test_temp_basal_above_max_basal_or_off_grid_is_nak_09(emu):
    h = Host(emu)
    for params in (b"\x00\x78\x02", b"\x00\x29\x02"):    # 3.0 U/h > max 2.0; 1.025 not on the 0.05 grid
        r, data = h.command(0x4C, params)
        assert (r.kind, data) == (KIND_NAK, b"\x09")
    assert not emu.ledger.deliveries()


def test_bolus_delivers_once_refuses_while_running_and_when_suspended():
    with Emulator(model="523", serial="736868") as e:
        h = Host(e)
        r, _ = h.command(0x42, commands.params("Bolus", "523", units=1.0))
        assert r.kind == KIND_ACK
        status = commands.decode("ReadPumpStatus", h.read("ReadPumpStatus")[1], "523")
        assert status["bolusing"] is True
        r, data = h.command(0x42, commands.params("Bolus", "523", units=0.5))
        assert (r.kind, data) == (KIND_NAK, b"\x0c")
        assert [x["units"] for x in e.ledger.deliveries("Bolus")] == [1.0]
        rec = newest(e, h, "Bolus")[-1]
        assert (rec["amount"], rec["programmed"]) == (1.0, 1.0)
        e.advance(60)
        assert commands.decode("ReadPumpStatus", h.read("ReadPumpStatus")[1], "523")["bolusing"] is False
        r, _ = h.command(0x4D, b"\x01")
        assert r.kind == KIND_ACK and e.pump.suspended
        assert newest(e, h, "PumpSuspend")
        r, data = h.command(0x42, commands.params("Bolus", "523", units=0.5))
        assert r.kind == KIND_NAK
        r, data = h.command(0x42, bytes([0x02, 0x58]))       # 15 U > max bolus 10
        assert r.kind == KIND_NAK
        h.command(0x4D, b"\x00")
        assert newest(e, h, "PumpResume") and not e.pump.suspended
        r, data = h.command(0x42, bytes([0x02, 0x58]))
        assert (r.kind, data) == (KIND_NAK, b"\x09")
        assert len(e.ledger.deliveries("Bolus")) == 1


def test_second_x23_bolus_lists_the_insulin_still_on_board():
    """x23+ pumps write an undated UnabsorbedInsulin record (0x5C) before a bolus while insulin
    is on board; decoded, it hangs in the bolus's ``appended`` and its sum is ``unabsorbed``."""
    with Emulator(model="523", serial="736868") as e:
        h = Host(e)
        assert h.command(0x42, commands.params("Bolus", "523", units=2.0))[0].kind == KIND_ACK
        e.advance(5 * 60)                    # 5 min later: inside the RF window and the action time
        assert h.command(0x42, commands.params("Bolus", "523", units=1.0))[0].kind == KIND_ACK
        second = newest(e, h, "Bolus")[-1]
        assert second["amount"] == 1.0 and 0 < second["unabsorbed"] < 2.0
        page = history.decode_page(h.read("ReadHistoryData", page=0)[1], e.pump.model)
        bolus = [r for r in page.records if r["_type"] == "Bolus"][0]
        listed = [x for a in bolus.get("appended", []) for x in a.get("data", [])]
        assert listed and abs(sum(x["amount"] for x in listed) - second["unabsorbed"]) < 1e-6
        assert [x["units"] for x in e.ledger.deliveries("Bolus")] == [2.0, 1.0]


def test_bolus_encoding_of_older_models_is_one_byte_tenths():
    with Emulator(model="522", serial="208850") as e:
        h = Host(e)
        r, _ = h.command(0x42, b"\x17")                     # 2.3 U
        assert r.kind == KIND_ACK and e.ledger.deliveries("Bolus")[-1]["units"] == 2.3
        assert newest(e, h, "Bolus")[-1]["amount"] == 2.3


def test_set_rtc_select_profile_and_keypad(emu):
    h = Host(emu)
    r, _ = h.command(0x40, commands.params("SetRTC", "523", clock="2024-02-03T04:05:06"))
    assert r.kind == KIND_ACK
    assert commands.decode("ReadRTC", h.read("ReadRTC")[1], "523")[:13] == "2024-02-03T04"
    assert newest(emu, h, "NewTimeSet")[-1]["timestamp"][:16] == "2024-02-03T04:05"
    h.command(0x4A, b"\x02")
    assert commands.decode("ReadSettings", h.read("ReadSettings")[1], "523")["selected_pattern"] == 2
    assert newest(emu, h, "SelectBasalProfile")[-1]["pattern"] == "pattern b"
    r, _ = h.command(0x5B, b"\x03")
    assert r.kind == KIND_ACK and emu.ledger[-1]["key"] == "UP"
    assert [x["op"] for x in emu.ledger if x["op"] in ("SetRTC", "SelectBasalProfile", "KeypadPush")] == \
        ["SetRTC", "SelectBasalProfile", "KeypadPush"]


def test_writes_fill_a_page_and_open_the_next(emu):
    h = Host(emu)
    before = emu.pump.history.cur_page_number()
    for _ in range(80):
        h.command(0x5B, b"\x00")
        h.command(0x4C, b"\x00\x28\x01")                    # 15 bytes of history each
    assert emu.pump.history.cur_page_number() == before + 1
    page0 = history.decode_page(h.read("ReadHistoryData", page=0)[1], "523")
    page1 = history.decode_page(h.read("ReadHistoryData", page=1)[1], "523")
    assert page0.complete and page1.complete


def test_writes_append_after_the_real_records_of_a_seeded_page():
    folder = shared_path(*PAGES_736868)
    with open(os.path.join(str(folder), "ReadHistoryData-page-0.data"), "rb") as fh:
        real = fh.read()
    with Emulator(model="523", serial="736868", pages=folder) as e:
        h = Host(e)
        h.command(0x4C, b"\x00\x28\x01")
        page = h.read("ReadHistoryData", page=0)[1]
        old = history.decode_page(real, "523").raw_order
        new = history.decode_page(page, "523").raw_order
        assert new[:len(old)] == old and [r["_type"] for r in new[len(old):]] == ["TempBasal", "TempBasalDuration"]
        assert h.read("ReadHistoryData", page=1)[1] == open(os.path.join(str(folder), "ReadHistoryData-page-1.data"), "rb").read()


# --- faults ----------------------------------------------------------------------------------------

def test_fault_timeout_and_nak(emu):
    h = Host(emu)
    emu.force("timeout")
    r, _ = h.command(0x8D)
    assert r.kind == KIND_TIMEOUT and emu.fault_counts["timeout"] == 1
    emu.force("nak")
    r, data = h.command(0x4C, b"\x00\x28\x01")
    assert (r.kind, data) == (KIND_NAK, b"\x08") and emu.fault_counts["nak"] == 1
    assert not emu.ledger.deliveries()


def test_fault_drop_args_executes_nothing_and_lost_ack_executes(emu):
    h = Host(emu)
    emu.force("drop_args")
    r, _ = h.command(0x42, b"\x00\x28")
    assert r.kind == KIND_TIMEOUT and not emu.ledger.deliveries()
    emu.force("lost_ack")
    r, _ = h.command(0x42, b"\x00\x28")
    assert r.kind == KIND_TIMEOUT
    (entry,) = emu.ledger.deliveries("Bolus")
    assert (entry["units"], entry["reply"]) == (1.0, "lost")
    assert emu.fault_counts["drop_args"] == emu.fault_counts["lost_ack"] == 1


def test_fault_corrupt_gives_a_bad_data_crc(emu):
    h = Host(emu)
    emu.force("corrupt")
    h.send(0x8D)
    r = frames.parse_radio_reply(h.reply())
    assert r.header_crc_ok and not r.data_crc_ok and emu.fault_counts["corrupt"] == 1
    assert h.command(0x8D)[1][:4] == b"\x03523"            # the next exchange is clean again


def test_fault_stall_stops_mid_page_then_one_kind_5(emu):
    h = Host(emu)
    emu.force("stall")
    h.send(0x80, b"\x00", frames.FRAMES_MANY)
    got = 0
    deadline = time.time() + 1
    while time.time() < deadline:
        st = h.status()
        if st.flags & 1:
            r = frames.parse_radio_reply(h.x(frames.encode_read_radio(st.size), st.size))
            assert not r.eod
            got += len(r.data)
        time.sleep(0.002)
    assert 0 < got < 1024 and h.status().flags == 0 and emu.fault_counts["stall"] == 1
    assert h.command(0x80, b"\x00", frames.FRAMES_MANY)[0].kind == KIND_TIMEOUT
    assert h.command(0x80, b"\x00", frames.FRAMES_MANY)[1] == emu.pump.history.page(0)


def test_fault_late_usb_answer_desyncs_the_next_read(emu):
    h = Host(emu)
    emu.force("late_usb")
    assert h.x(frames.stick_command("ProductInfo"), timeout=0.2) == b""
    late = h.x(frames.stick_command("ReadStatus"))
    assert late[9:19] == b"ComLink II"                  # the previous answer, read one step behind
    assert h.emu.read(64, 0.5)[4] == 0x02               # then the status answer
    assert emu.fault_counts["late_usb"] == 1


def test_asleep_until_power_control_and_rf_window_closes():
    with Emulator(model="522", serial="208850", faults="asleep") as e:
        h = Host(e)
        assert h.command(0x8D)[0].kind == KIND_TIMEOUT and e.fault_counts["asleep"] == 1
        h.send(0x5D, b"\x01\x02", 0, 0, button=0x55)
        assert e.read(64, 0.01) == b""                  # stick silent during the wake-up burst
        assert h.stick("ProductInfo")[9:19] == b"ComLink II"   # answers come late, in order
        assert frames.parse_radio_reply(h.reply()).kind == KIND_ACK
        assert h.command(0x8D)[1][:4] == b"\x03522"
        e.advance(121)                                   # 2 minutes asked for
        assert h.command(0x8D)[0].kind == KIND_TIMEOUT


def test_out_of_range_even_power_control_times_out():
    with Emulator(model="522", serial="208850", faults="out_of_range") as e:
        h = Host(e)
        h.send(0x5D, b"\x01\x0a", 0, 0, button=0x55)
        assert frames.parse_radio_reply(h.reply()).kind == KIND_TIMEOUT
        assert h.command(0x8D)[0].kind == KIND_TIMEOUT and e.fault_counts["out_of_range"] >= 2


def test_fault_probabilities_are_seeded():
    def run(seed):
        with Emulator(model="522", faults="timeout=0.5,seed=%d" % seed) as e:
            h = Host(e)
            return [h.command(0x8D)[0].kind for _ in range(20)], e.fault_counts["timeout"]
    a, b = run(4), run(4)
    assert a == b and 0 < a[1] < 20 and a[0].count(KIND_TIMEOUT) == a[1]


def test_bad_fault_spec_is_refused():
    from decocare.errors import BadInput
    with pytest.raises(BadInput):
        Emulator(faults="explode=1")
    with pytest.raises(BadInput):
        Emulator(faults="timeout=2")


# --- serving: URL, pty, CLI ---------------------------------------------------------------------

def test_url_opens_the_live_instance_and_creates_fresh_ones():
    serial.protocol_handler_packages.append("decocare.urlhandler")
    with Emulator(model="515") as e:
        port = serial.serial_for_url(e.url, timeout=0.5)
        port.write(frames.stick_command("ProductInfo"))
        assert port.read(64)[9:19] == b"ComLink II"
        port.close()
    port = serial.serial_for_url("emulator://?model=554&serial=123456&timing=fast", timeout=0.5)
    h = Host(port.device, "123456")
    assert h.command(0x8D)[1][:4] == b"\x03554"
    port.close()
    with pytest.raises(serial.SerialException):
        serial.serial_for_url("emulator://?model=999")


def test_pty_serves_with_a_symlink_and_removes_it(tmp_path):
    link = str(tmp_path / "carelink.ttyUSB0")
    with Emulator(model="522") as e:
        assert e.serve_pty(link) == link and os.path.islink(link)
        port = serial.Serial(link, timeout=0.5)
        port.write(frames.stick_command("ProductInfo"))
        assert port.read(64)[9:19] == b"ComLink II"
        port.write(frames.encode_transmit("208850", 0x8D, b""))
        assert port.read(64)[:3] == b"\x01\x55\x00"
        port.close()
    assert not os.path.exists(link)


def test_cli_prints_the_port_first_and_stops_on_sigterm(tmp_path):
    link = str(tmp_path / "stick")
    ledger = tmp_path / "ledger.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "decocare.emulator", "--model", "523", "--serial",
                             "736868", "--link", link, "--timing", "fast", "--ledger", str(ledger)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), text=True)
    try:
        assert proc.stdout.readline().strip() == link
        port = serial.Serial(link, timeout=0.5)
        port.write(frames.encode_transmit("736868", 0x4C, b"\x00\x28\x01", frames=1, retries=0))
        assert port.read(64)[:3] == b"\x01\x55\x00"
        port.close()
        time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
    assert proc.returncode == 0 and not os.path.exists(link)
    (entry,) = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert (entry["op"], entry["rate"], entry["duration"]) == ("TempBasal", 1.0, 30)


def test_cli_bad_input_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "decocare.emulator", "--pages", str(tmp_path),
                           "--link", ""], capture_output=True, text=True, cwd=str(ROOT), timeout=20)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1

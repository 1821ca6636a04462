"""The project's codec over every real transcript, and the replay:// transport.

Expected figures come from the transcripts' README table and the spec (protocol.md §4.2, §5.6),
not from running the code: e.g. 736868's download holds pages 0-35 plus the page 0 of an earlier
run, the set-temp-basal capture reads back 2.0 U/h for 60 min.
"""
import hashlib
import json
import re
import subprocess
import sys

import pytest

from decocare import errors, frames, replay
from decocare.link import Link
from decocare.session import Session
from decocare.stick import Stick
from decocare.tools import replay as replay_cli

from test_session import MODEL, TEMP, cmd


@pytest.fixture(scope="module")
def checks(transcripts_dir):
    files = sorted(transcripts_dir.glob("*.jsonl"))
    assert len(files) == 50
    return {f.name[:-len(".jsonl")]: replay.check_file(f) for f in files}


def test_every_host_write_is_understood_and_reencodes(checks):
    for name, check in checks.items():
        assert check.writes_ok == check.writes, name
        assert check.writes > 0


def test_every_transmit_packet_reencodes_byte_for_byte(transcripts_dir):
    """Serial, opcode, params, length fields and both CRC8s, for every TransmitPacket captured."""
    seen = 0
    for path in transcripts_dir.glob("*.jsonl"):
        for op in replay.load(path):
            if op.dir == "w" and op.complete and op.data[:1] == b"\x01":
                t = frames.parse_transmit(op.data)
                assert t.header_crc_ok and t.params_crc_ok
                assert frames.encode_transmit(t.serial, t.opcode, t.params, frames=t.frames,
                                              retries=t.retries, button=t.button) == op.data
                seen += 1
    assert seen == 335 + 279 + 25 + 1        # 16/17/18/19-byte TransmitPackets in the corpus


def test_every_stick_reply_parses(checks):
    for name, check in checks.items():
        assert check.replies_ok == check.replies, name


# pages with a valid CRC16 per download log: README "history pages OK" (+ page 0 read again by
# an earlier run in the same file where the log holds one)
GOLDEN_PAGES = {
    "analysis__736868__logs__download.log": 37,       # 0-35, plus page 0 of epoch 2
    "analysis__578398__logs__download.log": 12,       # 0-10, plus page 0 of epoch 2
    "analysis__europe-722__raw__download.log": 2,
    "analysis__bewest-pump__fall-2013__download.log": 33,   # 0-4,6-21,23,26-35 + page 0 twice
    "analysis__experiments__pcaps__xmas-2012__session-1.csv": 4,
    "analysis__xiali__raw__download.log": 0,          # the 512 refuses every page >= 1, page 0 stalls
}


def test_pages_reassemble_with_valid_crc(checks):
    for name, expected in GOLDEN_PAGES.items():
        pages = checks[name].pages
        assert sum(1 for p in pages if p[3]) == expected, name
    for name, check in checks.items():
        assert all(ok for _, _, _, ok in check.pages), name     # no complete page fails CRC16


# captures whose live page 0 was never saved as a file (vendor CareLink uploads, xiali's
# experiment logs): their page 0 cannot be in the page collection
PAGE0_NOT_SAVED = ("analysis__experiments__", "analysis__xiali__log142-")


def test_pages_equal_the_real_pages_of_the_same_pump(checks, page_index):
    by_sha = {p["sha256"]: p for p in page_index}
    matched = 0
    for name, check in checks.items():
        serials = {tp.request.transmit.serial for tp in check.transmits}
        for _, number, data, ok in check.pages:
            entry = by_sha.get(hashlib.sha256(data).hexdigest())
            if entry is None:
                assert name.startswith(PAGE0_NOT_SAVED) and number == 0, (name, number)
                continue
            assert entry["pump"]["serial"] in serials, (name, number)
            matched += 1
    # downloads 37+12+33+2, status-quo 39+14, page 0 of the 6 commands/session logs + europe
    # session, vendor second_run page 1 and xmas pages 1-3
    assert matched == (37 + 12 + 33 + 2) + (39 + 14) + 7 + 1 + 3


def test_decoded_values_match_the_captures(checks):
    check = checks["analysis__736868__logs__commands.log"]
    values = dict(check.decoded)
    raw = {tp.request.transmit.opcode: tp.data for tp in check.transmits if tp.complete}
    assert check.model == "523"
    assert values["ReadPumpModel"] == "523"
    rtc = raw[0x70]         # spec §5.1: d0 h, d1 min, d2 s, d3-4 year, d5 month, d6 day
    assert values["ReadRTC"] == "%04d-%02d-%02dT%02d:%02d:%02d" % (
        rtc[3] << 8 | rtc[4], rtc[5], rtc[6], rtc[0], rtc[1], rtc[2])
    assert values["ReadRTC"] == "2015-03-29T22:33:26"
    assert values["ReadBatteryStatus"]["voltage"] == (raw[0x72][1] << 8 | raw[0x72][2]) / 100.0
    assert values["ReadFirmwareVersion"] == raw[0x74][:11].decode() == "VER 2.5A1.1"
    temp = [v for n, v in checks["analysis__set-temp-basal.markdown"].decoded if n == "ReadBasalTemp"]
    assert temp[-1] == {"temp": "absolute", "rate": 2.0, "duration": 60}
    assert dict(checks["analysis__europe-722__raw__commands.log"].decoded)["ReadPumpModel"] == "715"
    assert dict(checks["analysis__578398__logs__commands.log"].decoded)["ReadPumpModel"] == "522"


def _count(check, kind):
    return sum(1 for _, text in check.anomalies if text.startswith(kind))


# README "anomalies" column, counted by the check independently
README_ANOMALIES = {
    "analysis__broken.markdown": {"zero-length read": 4},
    "analysis__nak-errors.markdown": {"zero-length read": 1, "data CRC": 1, "stick NAK": 1},
    "analysis__reproducible.markdown": {"zero-length read": 3},
    "logs__commands.log": {"zero-length read": 10},
    "logs__session.log": {"zero-length read": 13},
    "logs__baseline.stick.log": {"zero-length read": 1},
    "analysis__bewest-pump__fall-2013__download.log": {"RF timeout": 4, "pump NAK": 1},
    "analysis__xiali__raw__download.log": {"RF timeout": 1, "pump NAK": 17},
    "analysis__736868__logs__download.log": {"pump NAK": 2, "desync": 0, "zero-length read": 0},
}


def test_anomalies_match_the_readme(checks):
    for name, expected in README_ANOMALIES.items():
        for kind, n in expected.items():
            assert _count(checks[name], kind) == n, (name, kind)


def test_desync_is_recognised(checks):
    """logs/commands.log: five ProductInfo writes answered late, one step behind afterwards."""
    check = checks["logs__commands.log"]
    assert _count(check, "desync") >= 5
    assert _count(checks["analysis__broken.markdown"], "desync") >= 4
    for name in ("analysis__736868__logs__download.log", "analysis__578398__logs__download.log",
                 "analysis__experiments__pcaps__first_run__first_run.csv"):
        assert _count(checks[name], "desync") == 0, name


def test_stalls_are_reported(checks):
    assert _count(checks["analysis__bewest-pump__fall-2013__download.log"], "stall") == 6


def test_incomplete_ops_are_counted_apart(checks):
    check = checks["analysis__eliminate-sequence-errors.markdown"]
    assert check.incomplete == {"w": 17, "r": 49}
    assert check.writes == 76 - 17


def test_cli_last_line(transcripts_dir):
    out = subprocess.run([sys.executable, "-m", "decocare.replay", "--check",
                          str(transcripts_dir / "analysis__set-temp-basal.markdown.jsonl")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[-1] == ("replay: 19/19 writes understood, 19/19 replies parsed, "
                       "3 pump replies decoded, 0 pages with valid CRC")


def test_cli_bad_file_is_one_line(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text("not json\n")
    run = subprocess.run([sys.executable, "-m", "decocare.replay", "--check", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == errors.EXIT_USAGE
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


# --- replay:// ------------------------------------------------------------------------------------

def replay_session(path, serial="208850"):
    link = Link("replay://%s" % path)
    stick = Stick(link)
    stick.open()
    return link, Session(stick, serial)


READ_TEMP = cmd("ReadBasalTemp", 0x98)


def test_replay_set_temp_basal_writes_identical_packet_and_reads_back(transcripts_dir):
    link, session = replay_session(transcripts_dir / "analysis__set-temp-basal.markdown.jsonl")
    assert session.execute(MODEL)[:4] == b"\x03515"
    assert session.execute(READ_TEMP)[:6] == bytes.fromhex("000000000000")
    assert session.execute(TEMP, b"\x00\x50\x02") == b""        # 2.0 U/h, 2 half-hours: ACK
    assert session.execute(READ_TEMP)[:6] == bytes.fromhex("00000050003c")
    link.close()


def test_replay_refuses_a_different_write(transcripts_dir):
    link, session = replay_session(transcripts_dir / "analysis__set-temp-basal.markdown.jsonl")
    session.execute(MODEL)
    with pytest.raises(replay.ReplayMismatch):
        session.execute(TEMP, b"\x00\x64\x02")                    # 2.5 U/h: not what was recorded
    assert session.stick.transmits == 2


def test_replay_never_skips_a_recorded_write(transcripts_dir):
    link, session = replay_session(transcripts_dir / "analysis__set-temp-basal.markdown.jsonl")
    session.execute(MODEL)
    session.execute(READ_TEMP)
    with pytest.raises(replay.ReplayMismatch):
        session.execute(READ_TEMP)          # would need the read-back that follows the TempBasal


def test_replay_bad_url_is_a_port_error(tmp_path):
    with pytest.raises(errors.PortError):
        Link("replay://%s" % (tmp_path / "missing.jsonl"))


LAST_LINE = re.compile(r"^replay: (\d+)/(\d+) writes understood, (\d+)/(\d+) replies parsed, "
                       r"(\d+) pump replies decoded, (\d+) pages with valid CRC$")


def test_check_cli_over_all_transcripts(transcripts_dir, capsys):
    """--check on each of the 50 transcripts: the last line has the promised form, every write
    is understood and every reply parsed, and no file has fewer decoded replies than pages."""
    totals = [0] * 6
    for path in sorted(transcripts_dir.glob("*.jsonl")):
        assert replay_cli.main(["--check", str(path)]) == 0
        last = capsys.readouterr().out.splitlines()[-1]
        m = LAST_LINE.match(last)
        assert m, last
        w, W, r, R, c, p = map(int, m.groups())
        assert (w, r) == (W, R), path.name
        assert c >= p
        totals = [a + b for a, b in zip(totals, (w, W, r, R, c, p))]
    # W and R straight from the JSON: complete writes, complete non-empty reads
    ops = [json.loads(line) for path in transcripts_dir.glob("*.jsonl") for line in open(str(path))]
    assert totals[1] == sum(1 for d in ops if d["dir"] == "w" and d["complete"])
    assert totals[3] == sum(1 for d in ops if d["dir"] == "r" and d["complete"] and d["hex"])
    assert totals[5] >= sum(GOLDEN_PAGES.values())


# --- the check on transcripts the tests build themselves --------------------------------------------

from test_stick_fakeport import make_page  # noqa: E402


def ops_of(*items):
    """("w"|"r", bytes[, complete]) -> replay.Op list."""
    return [replay.Op(i, item[0], bytes(item[1]), item[2] if len(item) > 2 else True, 1, 0, i)
            for i, item in enumerate(items)]


def pad(b):
    return (bytes(b) + bytes(64))[:64]


def exchange(opcode, params=b"", reply=None, kind=frames.KIND_FRAME, frames_=1):
    """A clean TransmitPacket -> status -> ReadRadio exchange, as the stick answers it."""
    radio = frames.encode_radio_reply(kind, "208850", reply if reply is not None else b"")
    return [("w", frames.encode_transmit("208850", opcode, params, frames=frames_)), ("r", pad(b"\x01\x55\x00")),
            ("w", b"\x03\x00\x00"), ("r", pad(frames.encode_status(1, len(radio)))),
            ("w", frames.encode_read_radio(len(radio))), ("r", radio)]


def test_check_clean_exchange_decodes_with_the_model():
    check = replay.Check(ops_of(*exchange(0x8D, reply=pad(b"\x03522"))))
    assert (check.writes_ok, check.writes, check.replies_ok, check.replies) == (3, 3, 3, 3)
    assert check.model == "522" and check.decoded == [("ReadPumpModel", "522")]
    assert not check.anomalies


def test_check_page_from_chunks_and_corrupt_chunk():
    page = make_page(3)
    ops = [("w", frames.encode_transmit("208850", 0x80, b"\x03", frames=2)), ("r", pad(b"\x01\x55\x00"))]
    for k in range(4):
        chunk = frames.encode_radio_reply(frames.KIND_CHUNK, "208850", page[256 * k:256 * k + 256], eod=k == 3)
        ops += [("w", b"\x03\x00\x00"), ("r", pad(frames.encode_status(1, len(chunk)))),
                ("w", frames.encode_read_radio(len(chunk))), ("r", chunk)]
    check = replay.Check(ops_of(*ops), model="522")
    assert [(n, d, ok) for _, n, d, ok in check.pages] == [(3, page, True)]
    bad = list(ops)
    bad[9] = ("r", bad[9][1][:-1] + bytes([bad[9][1][-1] ^ 1]))          # second chunk's data CRC8
    check = replay.Check(ops_of(*bad), model="522")
    assert not check.pages and any(t.startswith("data CRC") for _, t in check.anomalies)
    assert check.replies_ok == check.replies                           # corrupt chunk: parsed + reported


def test_check_desync_late_answer_and_lost_write():
    status = pad(frames.encode_status(0, 0))
    ops = ops_of(("w", b"\x03\x00\x00"), ("r", b""), ("w", b"\x03\x00\x00"), ("r", status),   # one behind
                 ("w", b"\x04\x00\x00"), ("r", b""), ("r", status),                       # still behind
                 ("w", b"\x06\x00\x00", False))                                           # lost write
    check = replay.Check(ops)
    kinds = [t.split(":")[0] for _, t in check.anomalies]
    assert kinds.count("desync") == 2 and kinds.count("zero-length read") == 2
    assert "unanswered" in kinds and check.incomplete == {"w": 1}
    assert check.writes == 3

"""The emulator's real timing held to the real captures: the bounds are derived from
../shared/fixtures/transcripts at test time (benchmarks/fit_timing.py, the same code that
printed the fit in docs/emulator.md), then the emulator is measured in its real-time mode by
polling it directly (not through decocare's client) -- three single-frame reads, one history
page, one RF timeout, one write ACK: about four seconds.
"""
import importlib.util
import time

import pytest

from decocare import commands, frames
from decocare.emulator import Emulator
from decocare.emulator.stick import Timing

from conftest import ROOT

SERIAL = "736868"
SLACK = 0.003           # s: the measurement's own resolution (a poll every ~0.5-1 ms) and jitter


def load_fit_module():
    spec = importlib.util.spec_from_file_location("fit_timing", str(ROOT / "benchmarks" / "fit_timing.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fit_timing = load_fit_module()


@pytest.fixture(scope="module")
def fit(transcripts_dir):
    return fit_timing.fit(transcripts_dir)


def inside(value, lo, hi, slack=SLACK):
    return lo - slack <= value <= hi + slack


def test_the_fit_has_its_evidence(fit):
    pages = fit["pages"]
    assert pages["decocare"]["pages"] >= 50 and pages["vendor"]["pages"] >= 5
    assert fit["reply"]["samples"] >= 100 and fit["rf_timeout"]["2"]["samples"] >= 2
    assert fit["pages"]["all"]["frame16"]["share"] == 1.0     # one range every real page allows


def test_timing_real_is_what_the_transcripts_give(fit):
    real, pages = Timing.REAL, fit["pages"]["all"]
    for key, value in fit["timing"].items():
        assert real[key] == pytest.approx(value, abs=0.0006), key   # the script's proposal is set
    assert inside(real["reply"], fit["reply"]["consensus"]["lo"], fit["reply"]["consensus"]["hi"], 0.0005)
    assert inside(real["first_frame"], pages["first"]["min"], pages["first"]["max"], 0)
    assert inside(real["frame"], pages["pace"]["min"], pages["pace"]["max"], 0)
    assert inside(real["first_frame"] + 15 * real["frame"], *pages["frame16_hard"], slack=0)
    assert inside(3 * real["rf_try"], *fit["rf_timeout"]["2"]["hard"], slack=0)
    assert real["write"] <= fit["write_ack"]["upper"]
    assert real["wake"] <= min(fit["wake"]["upper"], fit["wake"]["vendor_stick_free_by"])
    profiles = fit["profiles"]
    assert inside(real["profile_first"], profiles["frame1"]["lo"], profiles["frame1"]["hi"], 0.0005)
    assert inside(real["profile_first"] + 2 * real["profile_frame"], profiles["frame3"]["lo"],
                  profiles["frame3"]["hi"], 0.0005)


class Probe:
    """Talks to the emulated stick directly and times when reply frames become buffered."""

    def __init__(self, emu):
        self.emu = emu

    def ask(self, data, size):
        self.emu.write(data)
        answer = self.emu.read(size, 2.0)
        assert len(answer) == size
        return answer

    def exchange(self, opcode, params=b"", frames_=frames.FRAMES_ONE, retries=2):
        """TransmitPacket, then poll as fast as the stick answers: per frame (1-based) the
        interval (lo, hi] of its arrival after the write, and the reply's kind."""
        packet = frames.encode_transmit(SERIAL, opcode, params, frames=frames_, retries=retries)
        start = time.monotonic()
        self.ask(packet, 64)
        bounds, consumed, kind = {}, 0, None
        last = 0.0
        while True:
            before = time.monotonic() - start
            status = frames.parse_status(self.ask(frames.stick_command("ReadStatus"), 64))
            after = time.monotonic() - start
            size = frames.ready_size(status)
            buffered = max(1, (size - 14) // 64) if size else 0
            for k in range(consumed + 1, consumed + buffered + 1):
                bounds[k] = (last, after)
            last = before
            if size:
                reply = frames.parse_radio_reply(self.ask(frames.encode_read_radio(size), size))
                kind = reply.kind
                consumed += buffered
                if reply.eod:
                    return [bounds[k] for k in sorted(bounds)], kind
            assert after < 5.0, "no reply"


@pytest.fixture(scope="module")
def measured():
    with Emulator(model="523", serial=SERIAL, timing="real", seed=2, weeks=2) as emu:
        probe = Probe(emu)
        singles = [probe.exchange(0x8D)[0][0] for _ in range(3)]
        page, kind = probe.exchange(0x80, b"\x00", frames.FRAMES_MANY)
        assert kind == frames.KIND_CHUNK and len(page) == 16
        emu.force("timeout")
        (timeout,), kind5 = probe.exchange(0x8D, retries=2)
        assert kind5 == frames.KIND_TIMEOUT
        temp = commands.params("TempBasal", "523", rate=0.5, duration=30)
        (ack,), kind1 = probe.exchange(0x4C, temp, retries=0)
        assert kind1 == frames.KIND_ACK
        return dict(singles=singles, page=page, timeout=timeout, ack=ack)


def test_single_frame_reply_lands_where_the_vendor_captures_say(fit, measured):
    lo, hi = fit["reply"]["consensus"]["lo"], fit["reply"]["consensus"]["hi"]
    for a, b in measured["singles"]:
        assert a - SLACK <= hi and b + SLACK >= lo, (a, b, lo, hi)      # overlaps the consensus
        assert b <= hi + SLACK


def test_page_frames_follow_the_fit_of_65_real_pages(fit, measured):
    pages = fit["pages"]["all"]
    slack, first, pace = fit_timing.line_fit([[(1e3 * a, 1e3 * b) for a, b in measured["page"]]])
    assert slack > -1e3 * SLACK
    assert inside(first / 1e3, pages["first"]["min"], pages["first"]["max"])
    assert inside(pace / 1e3, pages["pace"]["min"], pages["pace"]["max"], 0.001)
    a16, b16 = measured["page"][15]
    lo16, hi16 = pages["frame16_hard"]
    assert b16 >= lo16 - SLACK and a16 <= hi16 + SLACK           # inside what every real page allows
    assert b16 <= hi16 + 0.03                                    # and read within 30 ms of it


def test_rf_timeout_and_write_ack_within_the_captured_bounds(fit, measured):
    lo, hi = fit["rf_timeout"]["2"]["hard"]
    a, b = measured["timeout"]
    assert b >= lo - SLACK and a <= hi + SLACK
    assert measured["ack"][0] <= fit["write_ack"]["upper"]

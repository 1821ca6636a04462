"""The core on the project's own golden set (tests/data/golden, written by tests/data/make_golden.py):
it stands without ../shared.  Generated pages decode to the recorded JSON, the emulator still
generates exactly those bytes, list_history.py prints the same time-ordered list, and a recorded
client session replays through the codec and through replay:// to the same pages."""
import json
import pathlib
import sys

import pytest

from decocare import cgm, history, replay
from decocare.commands import Pump
from decocare.link import Link
from decocare.pages import page_crc_ok
from decocare.session import Session
from decocare.stick import Stick
from decocare.tools import registry

HERE = pathlib.Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden"
sys.path.insert(0, str(HERE / "data"))
import make_golden  # noqa: E402

REGENERATE = "regenerate with python3 tests/data/make_golden.py and review the diff"


def pages(model):
    found = sorted(GOLDEN.glob("%s-history-*.page" % model), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert found, "no golden pages for %s" % model
    return [p.read_bytes() for p in found]


@pytest.mark.parametrize("model, seed, weeks", make_golden.SETS)
def test_the_emulator_still_generates_the_golden_pages(model, seed, weeks):
    with make_golden.emulator(model, seed, weeks) as emu:
        assert emu.pump.history.pages == pages(model), REGENERATE
        for path in GOLDEN.glob("%s-glucose-*.page" % model):
            assert emu.pump.glucose[int(path.stem.rsplit("-", 1)[1])] == path.read_bytes(), REGENERATE


@pytest.mark.parametrize("model", [m for m, _, _ in make_golden.SETS])
def test_golden_pages_decode_to_the_golden_json(model):
    results = [history.decode_page(page, model) for page in pages(model)]
    assert all(r.complete and r.crc_ok for r in results)
    expected = json.loads((GOLDEN / ("%s-history.json" % model)).read_text())
    assert json.loads(json.dumps(history.merge(results))) == expected, REGENERATE
    stamps = [r["timestamp"] for r in expected if "timestamp" in r]
    assert stamps == sorted(stamps, reverse=True)                   # one time-ordered list
    days = {r["timestamp"][:10] for r in expected}
    assert len(days) > 5 and any(r["_type"] == "ResultDailyTotal" for r in expected)


def test_list_history_prints_the_golden_list(capsys):
    paths = [str(p) for p in sorted(GOLDEN.glob("523-history-*.page"),
                                    key=lambda p: int(p.stem.rsplit("-", 1)[1]))]
    with pytest.raises(SystemExit) as done:
        registry.launch("list_history.py", ["--json", "--model", "523"] + paths)
    assert done.value.code == 0
    assert json.loads(capsys.readouterr().out) == json.loads((GOLDEN / "523-history.json").read_text())


def test_golden_glucose_pages_decode_completely():
    for path in GOLDEN.glob("*-glucose-*.page"):
        result = cgm.decode_page(path.read_bytes())
        assert result.complete and sum(1 for r in result.records if "sgv" in r) > 100


def test_the_recorded_session_replays_through_the_codec():
    check = replay.check_file(str(GOLDEN / "client-523.transcript"))
    assert check.writes == check.writes_ok and check.replies == check.replies_ok
    assert check.model == "523"
    assert [(name, n, ok) for name, n, _, ok in check.pages] == [
        ("ReadHistoryData", n, True) for n in range(len(pages("523")))]
    assert [data for _, _, data, _ in check.pages] == pages("523")


def test_the_recorded_session_serves_the_client_through_replay_urls():
    with Link("replay://%s" % (GOLDEN / "client-523.transcript")) as link:
        stick = Stick(link, poll_interval=0.001, chunk_interval=0.001)
        pump = Pump(Session(stick, make_golden.SERIAL))
        assert str(pump.model) == "523"
        count = pump.page_count()
        assert count == len(pages("523"))
        got = [pump.history_page(n) for n in range(count)]
    assert got == pages("523") and all(page_crc_ok(p) for p in got)

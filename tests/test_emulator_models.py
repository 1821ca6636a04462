"""Issue 4's acceptance, end to end: decocare's own client (link -> stick -> session -> commands
-> download) against emulated 515, 522, 523 and 554 pumps, exactly the code path of a real stick.

* Seeded with real pages of that model from ../shared/fixtures/pages: every page downloads
  byte-identical and every read the model supports is answered (none refused).
* With a generated history: the pages the client downloads decode back to the generated events.
"""
import json

import pytest

from decocare import download, history
from decocare.emulator import Emulator, generate
from decocare.connect import open_pump

from conftest import shared_path

MODELS = ("515", "522", "523", "554")
SERIAL = "208850"


def real_pages(page_index, model, limit=12):
    """Up to ``limit`` complete, CRC-valid real history pages of ``model``, newest first (so they
    can stand as pages 0..k-1 of one emulated pump)."""
    pages = [p for p in page_index if p["kind"] == "pump_history" and p["condition"] == "complete"
             and p["pump"]["model"] == model and p["crc16"]["valid"] and p.get("date_range")]
    pages.sort(key=lambda p: p["date_range"][1], reverse=True)
    return [shared_path("fixtures", "pages", p["bin"]).read_bytes() for p in pages[:limit]]


@pytest.mark.parametrize("model", MODELS)
def test_client_downloads_real_pages_byte_identical_and_reads_everything(model, page_index, tmp_path):
    pages = real_pages(page_index, model)
    assert len(pages) >= 2, "the corpus has real %s pages" % model
    seed = tmp_path / "seed"
    seed.mkdir()
    for n, data in enumerate(pages):
        (seed / ("ReadHistoryData-page-%d.data" % n)).write_bytes(data)
    out = tmp_path / "logs"
    with Emulator(model=model, serial=SERIAL, pages=str(seed)) as emu:
        with open_pump(emu.url, SERIAL) as pump:
            report = download.download(pump, str(out))
            failed = report.failed
            values = pump.read_all()
    assert not failed
    for n, data in enumerate(pages):
        assert (out / ("ReadHistoryData-page-%d.data" % n)).read_bytes() == data, "page %d" % n
    refused = {name: v for name, v in values.items() if isinstance(v, dict) and "error" in v}
    assert not refused, "reads the %s supports were refused: %s" % (model, refused)
    assert values["ReadPumpModel"] == model and values["ReadPumpID"] == SERIAL
    json.dumps(values)                                     # every decoded value is JSON-able


@pytest.mark.parametrize("model", MODELS)
def test_client_downloads_a_generated_history_that_decodes_to_the_generated_events(model, tmp_path):
    with Emulator(model=model, serial=SERIAL, seed=11, weeks=2) as emu:
        expected = generate.events(model, emu.pump.start, seed=11, weeks=2)
        with open_pump(emu.url, SERIAL) as pump:
            report = download.download(pump, str(tmp_path))
            saved, failed = report.saved, report.failed
    assert not failed and saved
    decoded = []
    for n in sorted(saved, reverse=True):                  # oldest page first
        data = (tmp_path / ("ReadHistoryData-page-%d.data" % n)).read_bytes()
        result = history.decode_page(data, model)
        assert result.complete and result.crc_ok
        decoded += result.raw_order
    assert [r["_type"] for r in decoded] == [name for name, _, _ in expected]
    for record, (name, when, fields) in zip(decoded, expected):
        if name == "ResultDailyTotal":
            assert record["valid_date"] == fields["valid_date"].isoformat()
            assert record["amount"] == pytest.approx(fields["amount"])
            continue
        assert record["timestamp"] == when.isoformat()
        for key in ("amount", "programmed", "rate", "duration (min)", "carb_input", "bg"):
            if key in fields:
                assert record[key] == pytest.approx(fields[key]), (name, key)

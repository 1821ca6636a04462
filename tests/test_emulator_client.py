"""End to end: decocare's own client (link -> stick -> session -> commands) against the
emulator's URL, the same code path as a real /dev/ttyUSB0."""
import json

import pytest

from decocare import commands, history
from decocare.emulator import Emulator
from decocare.link import Link
from decocare.session import Session
from decocare.stick import Stick
from decocare.tools import writes

from conftest import shared_path


def pump_for(emu):
    link = Link(emu.url, timeout=0.5)
    stick = Stick(link)
    stick.open()
    return link, commands.Pump(Session(stick, emu.pump.serial))


@pytest.mark.parametrize("model,serial,folder", [
    ("523", "736868", ("fixtures", "carelink", "tree", "analysis", "736868", "logs")),
    ("522", "578398", ("fixtures", "carelink", "tree", "analysis", "578398")),
])
def test_client_downloads_seeded_pages_byte_identical_and_reads_everything(model, serial, folder):
    folder = shared_path(*folder)
    with Emulator(model=model, serial=serial, pages=str(folder)) as emu:
        link, pump = pump_for(emu)
        try:
            assert pump.model.number == model
            for n in range(emu.pump.history.cur_page_number() + 1):
                with open(str(folder / ("ReadHistoryData-page-%d.data" % n)), "rb") as fh:
                    assert pump.history_page(n) == fh.read()
            values = pump.read_all()
            assert values["ReadPumpID"] == serial
        finally:
            link.close()


def test_client_reads_a_generated_history_back():
    with Emulator(model="554", serial="123456", seed=5) as emu:
        link, pump = pump_for(emu)
        try:
            page = pump.history_page(0)
            assert history.decode_page(page, "554").complete
        finally:
            link.close()


def test_write_tools_outcomes_match_the_ledger(capsys):
    """mm-temp-basals / mm-bolus through the URL: delivered, refused and uncertain as the pump did."""
    with Emulator(model="523", serial="736868") as emu:
        port = ["--port", emu.url, "--serial", "736868"]
        assert writes.temp_basals_main(port + ["--json", "set", "--rate", "1.5", "--duration", "60"]) == 0
        assert json.loads(capsys.readouterr().out)["outcome"] == "delivered"
        assert emu.ledger.deliveries("TempBasal")[-1]["rate"] == 1.5
        emu.force("lost_ack")
        code = writes.bolus_main(port + ["1.0", "--yes", "--json"])
        out = json.loads(capsys.readouterr().out)
        (bolus,) = emu.ledger.deliveries("Bolus")
        assert bolus["reply"] == "lost" and out["outcome"] in ("delivered", "uncertain") and code in (0, 7)
        emu.advance(120)
        code = writes.bolus_main(port + ["12", "--yes", "--json"])          # above max bolus 10 U
        assert json.loads(capsys.readouterr().out)["outcome"] == "refused" and code == 6
        assert len(emu.ledger.deliveries("Bolus")) == 1

"""explain.log from synthetic run logs: every fact it states comes from the logs, the pages'
own CRCs or the exit codes it was given (the end-to-end test runs it on a real run)."""
import time

import pytest

from decocare import explain
from decocare.errors import BadInput
from decocare.lib import crc16
from decocare.tools import explain as explain_cli

STICK = """INFO:decocare.link:usb.write.len: 3
0000   0x04 0x00 0x00                  ...
serial:            0c1700
product.version:   1.0
description:       ComLink II
software.version:  1.16
rf.freq:           916.5 MHz (US)
interfaces:        1 Paradigm RF, 3 USB
signal strength:   %d
radio stats: crc_errors=0 sequence_errors=0 naks=%d timeouts=0 received=10 transmitted=10
usb stats: crc_errors=0 sequence_errors=0 naks=0 timeouts=0 received=30 transmitted=30
"""

COMMANDS = """INFO:decocare.link:usb.read.len: 64
# pump 208850, model 523

## ReadPumpID
%s

## ReadFirmwareVersion
VER 2.4A1.1

## ReadRTC
%s

## ReadBatteryStatus
- status: normal
- voltage: 1.45

## ReadRemainingInsulin
150.5

## ReadPumpStatus
- status: normal
- status_code: 3
- bolusing: %s
- suspended: False

## ReadBasalTemp
- temp: absolute
- rate: 0.0
- duration: 0
"""


def page(valid=True):
    body = bytes(range(256)) * 3 + bytes(1022 - 768)
    crc = crc16(body) ^ (0 if valid else 1)
    return body + crc.to_bytes(2, "big")


def write_run(logs, pump_id="208850", clock="2024-05-01T12:00:00", naks=0, pages=(True,) * 3, glucose=(),
              bolusing=False, model="523"):
    logs.mkdir(exist_ok=True)
    (logs / "baseline.stick.log").write_text(STICK % (180, 0))
    (logs / "stick.log").write_text(STICK % (190, 0))
    (logs / "postmortem.stick.log").write_text(STICK % (185, naks))
    (logs / "session.log").write_text("INFO:decocare.session:x\nmodel: %s\n" % model)
    (logs / "commands.log").write_text(COMMANDS % (pump_id, clock, bolusing))
    for n, ok in enumerate(pages):
        (logs / ("ReadHistoryData-page-%d.data" % n)).write_bytes(page(ok))
    for n, ok in enumerate(glucose):
        (logs / ("ReadGlucoseHistory-page-%d.data" % n)).write_bytes(page(ok))
    return logs


def epoch(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))


ALL_OK = {name: 0 for name in explain.EXPERIMENTS}


def test_a_clean_run(tmp_path):
    logs = write_run(tmp_path / "logs")
    start = epoch("2024-05-01T12:00:00")
    text = explain.explain(str(logs), "/dev/ttyUSB0", "208850", ALL_OK, window=(start, start + 1))
    assert "ComLink II, serial 0c1700, firmware 1.16, radio 916.5 MHz (US)" in text
    assert "before 180, pump awake 190, after 185" in text
    assert "model 523, serial 208850, firmware VER 2.4A1.1" in text
    assert "no drift measurable" in text
    assert "normal, not bolusing, not suspended" in text
    assert "normal, 1.45 V" in text and "150.5 U" in text and "none running" in text
    assert "3 (0-2), every CRC valid" in text
    assert "glucose pages: none downloaded" in text          # a 523 keeps them: say so
    assert "errors:        none" in text and "FAILED" not in text


def test_bad_pages_wrong_serial_drift_counters_and_failures(tmp_path):
    logs = write_run(tmp_path / "logs", pump_id="123456", clock="2024-05-01T12:05:00", naks=2,
                     pages=(True, False, True, False, False), glucose=(True, True), bolusing=True)
    (logs / "download.log").write_text("INFO:decocare.link:...\ndecocare.download: no response from the pump\n")
    start = epoch("2024-05-01T12:00:00")
    results = dict(ALL_OK, download=5)
    text = explain.explain(str(logs), "/dev/ttyUSB0", "208850", results, window=(start, start + 2))
    assert "the pump says 123456!" in text
    assert "normal, BOLUSING, not suspended" in text
    assert "AHEAD by 297 to 301 s" in text
    assert "radio naks=2" in text
    assert "5 (0-4), CRC FAILED on 1, 3-4" in text
    assert "glucose pages: 2 (0-1), every CRC valid" in text
    assert "download FAILED" in text
    assert "download exit 5: decocare.download: no response from the pump" in text


def test_pump_behind_and_missing_logs(tmp_path):
    logs = write_run(tmp_path / "logs", clock="2024-05-01T11:59:00")
    start = epoch("2024-05-01T12:00:00")
    text = explain.explain(str(logs), window=(start, start))
    assert "BEHIND by 59 to 61 s" in text and "glucose pages" in text
    logs = write_run(tmp_path / "logs515", model="515")
    assert "glucose pages" not in explain.explain(str(logs))   # a 515 has no CGM
    empty = tmp_path / "empty"
    empty.mkdir()
    text = explain.explain(str(empty), results={"session": 5})
    assert "no answer" in text and "model unknown" in text and "history pages: none downloaded" in text
    assert "session exit 5: no output" in text and "commands not run" in text


def test_model_only_and_cli_errors(tmp_path, capsys):
    logs = write_run(tmp_path / "logs")
    assert explain_cli.main(["--model", str(logs)]) == 0
    assert capsys.readouterr().out == "523\n"
    with pytest.raises(BadInput, match="no pump model"):
        explain_cli.main(["--model", str(tmp_path)])
    with pytest.raises(BadInput, match="no such directory"):
        explain_cli.main([str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit):
        explain_cli.main([str(logs), "--result", "bogus=1"])


HISTORY_FAILED = """INFO:decocare.link:usb.write.len: 16
ReadHistoryData: the pump reports 36 pages; reading them into logs
page 0: ok, 1024 bytes, CRC16 valid, 2.4 s (1/36) -> logs/ReadHistoryData-page-0.data
WARNING:decocare.session:ReadHistoryData attempt 1/3: ReadRadio: data CRC8 mismatch (64 data bytes)
page 9: NOT SAVED (the pump refused it, yet reported it): the pump refused ReadHistoryData (NAK code 0x08)
retrying 1 missing page: 9
page 9: NOT SAVED (the pump refused it, yet reported it): the pump refused ReadHistoryData (NAK code 0x08)
1 of the 36 history pages the pump reported are missing: 9; they were not saved (see ReadHistoryData.manifest.json)
INFO:decocare.link:usb.write.len: 3
ReadGlucoseHistory: the pump reports 1 page; reading them into logs
page 249: ok, 1024 bytes, CRC16 valid, 2.4 s (1/1) -> logs/ReadGlucoseHistory-page-249.data
1 page saved in logs: every page the pump reported
"""
GLUCOSE_FAILED = """ReadHistoryData: the pump reports 2 pages; reading them into logs
page 0: ok, 1024 bytes, CRC16 valid, 2.4 s (1/2) -> logs/ReadHistoryData-page-0.data
page 1: ok, 1024 bytes, CRC16 valid, 2.4 s (2/2) -> logs/ReadHistoryData-page-1.data
2 pages saved in logs: every page the pump reported
INFO:decocare.link:usb.write.len: 3
python -m decocare.download: the pump refused ReadCurGlucosePageNumber (NAK code 0x08: command refused)
"""
UNBOUNDED_FAILED = """ReadHistoryData: the pump reports 32 pages at most (it tells no range); reading them into logs
page 3: NOT SAVED (could not be read intact): ReadHistoryData failed after 3 attempts: no reply
2 history pages before the end of the history are missing: 3 4; they were not saved (see ReadHistoryData.manifest.json)
run_download: pump model unknown (no logs/session.log; set DECOCARE_MODEL): glucose pages skipped
"""
FROZE = """ReadHistoryData: the pump reports 36 pages; reading them into logs
page 0: ok, 1024 bytes, CRC16 valid, 2.4 s (1/36) -> logs/ReadHistoryData-page-0.data
the download stopped: the stick stopped answering on USB (ReadStatus: no answer): unplug it and plug it back in
python -m decocare.download: the stick stopped answering on USB (ReadStatus: no answer): unplug it and plug it back in; 35 of the 36 history pages the pump reported are missing: 1 2 3
python -m decocare.download: ReadPumpModel failed after 3 attempts: the stick did not answer
"""


@pytest.mark.parametrize("log, code, named", [
    (HISTORY_FAILED, 5, "1 of the 36 history pages the pump reported are missing: 9"),
    (GLUCOSE_FAILED, 6, "python -m decocare.download: the pump refused ReadCurGlucosePageNumber"),
    (UNBOUNDED_FAILED, 5, "2 history pages before the end of the history are missing: 3 4"),
    (FROZE, 5, "python -m decocare.download: the stick stopped answering on USB"),
])
def test_a_failed_download_is_named_by_its_own_error(tmp_path, log, code, named):
    """run_download runs the download twice (history, then glucose pages): explain.log names the
    failure that happened -- not the glucose run's success line after a failed history, nor a
    later line after the first failure."""
    logs = write_run(tmp_path / "logs")
    (logs / "download.log").write_text(log)
    text = explain.explain(str(logs), "/dev/ttyUSB0", "208850", dict(ALL_OK, download=code))
    error = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and error[0].startswith("error:         download exit %d: %s" % (code, named)), error

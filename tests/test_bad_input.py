"""The bad-input matrix (issue 10): every tool of ``decocare.tools.registry.TOOLS`` run as a
command line with each bad input that applies to it -- a bad or missing serial, a port that does
not exist or is a folder, /dev/zero, a FIFO or a plain file, a folder / /dev/zero / a FIFO / an
empty or garbage file where a page, transcript, suggestion or log is read, huge, negative,
1e400 and nan numbers, far-future and malformed clock times, unwritable --out/--save/--ledger/
--link, unknown models, bad --faults specs and --cur-page -- must print exactly one line on
stderr and exit with the code errors.EXIT_CODES gives that kind of failure: never a traceback,
never a hang (each run has a timeout).

Inputs that get as far as the pump run against an emulated 523 served on a pty (one per worker
thread), and its ledger must show that nothing that changes the pump was executed.
"""
import concurrent.futures
import json
import os
import pathlib
import queue
import subprocess
import sys
import threading


from decocare import commands, errors
from decocare.emulator import Emulator
from decocare.tools import registry

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERIAL = "208850"
MODEL = "523"
TIMEOUT = 30          # a hang is a failure; no case needs more than a few seconds
WORKERS = 8

USAGE, PORT, NO_RESPONSE, REFUSED = (errors.EXIT_USAGE, errors.EXIT_PORT, errors.EXIT_NO_RESPONSE,
                                     errors.EXIT_REFUSED)
LAUNCH = "import sys; from decocare.tools.registry import launch; launch(sys.argv[1], sys.argv[2:])"

# Placeholders in the argument lists, replaced per run: {pump} the emulator's port; the files
# of ``bad_files``.
PUMP = "{pump}"


def bad_files(folder):
    """The bad things a path can point at, made once in ``folder``."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adir").mkdir()
    os.mkfifo(folder / "fifo")
    (folder / "empty").write_bytes(b"")
    (folder / "garbage").write_bytes(b"hello, this is not a pump page\n" * 40)
    (folder / "noise").write_bytes(bytes((i * 37 + 11) % 256 for i in range(1024)))
    (folder / "afile").write_bytes(b"x")
    (folder / "notjson.json").write_text("{not json")
    (folder / "list.json").write_text("[1, 2]")
    (folder / "nan.json").write_text('{"rate": NaN, "duration": 30}')
    (folder / "huge.json").write_text('{"rate": 1e400, "duration": 30}')
    (folder / "percent.json").write_text('{"temp": "percent", "rate": 50, "duration": 30}')
    (folder / "negative.json").write_text('{"rate": -1, "duration": 30}')
    (folder / "badduration.json").write_text('{"rate": 1, "duration": 99999999}')
    (folder / "logs-fifo").mkdir()
    os.mkfifo(folder / "logs-fifo" / "download.log")
    os.mkfifo(folder / "logs-fifo" / "ReadHistoryData-page-0.data")
    (folder / "pages-fifo").mkdir()
    os.mkfifo(folder / "pages-fifo" / "ReadHistoryData-page-0.data")
    (folder / "pages-dir").mkdir()
    (folder / "pages-dir" / "ReadHistoryData-page-0.data").mkdir()
    (folder / "pages-garbage").mkdir()
    (folder / "pages-garbage" / "ReadHistoryData-page-0.data").write_bytes(b"short")
    return {
        "dir": str(folder / "adir"), "fifo": str(folder / "fifo"), "empty": str(folder / "empty"),
        "garbage": str(folder / "garbage"), "noise": str(folder / "noise"), "zero": "/dev/zero",
        "missing": str(folder / "missing"), "file": str(folder / "afile"),
        "under-file": str(folder / "afile" / "sub"), "under-missing": str(folder / "nowhere" / "x"),
        "notjson": str(folder / "notjson.json"), "list": str(folder / "list.json"),
        "nanjson": str(folder / "nan.json"), "hugejson": str(folder / "huge.json"),
        "percentjson": str(folder / "percent.json"), "negativejson": str(folder / "negative.json"),
        "baddurationjson": str(folder / "badduration.json"), "logs-fifo": str(folder / "logs-fifo"),
        "pages-fifo": str(folder / "pages-fifo"), "pages-dir": str(folder / "pages-dir"),
        "pages-garbage": str(folder / "pages-garbage"),
    }


# --- the matrix --------------------------------------------------------------------------------

PUMP_TOOLS = ("mm-send-comm.py", "mm-latest.py", "mm-pages.py", "mm-history.py", "mm-glucose.py",
              "mm-temp-basals.py", "mm-bolus.py", "mm-set-suspend.py", "mm-set-rtc.py",
              "mm-press-key.py", "mm-select-profile.py", "decocare.session", "decocare.commands",
              "decocare.download")
# the least a pump tool needs besides --port/--serial (a harmless read where there is one)
BASE = {
    "mm-send-comm.py": ["ReadRTC"], "mm-latest.py": ["30"], "mm-pages.py": ["0"], "mm-history.py": [],
    "mm-glucose.py": [], "mm-temp-basals.py": ["query"], "mm-bolus.py": ["1.0", "--yes"],
    "mm-set-suspend.py": ["query"], "mm-set-rtc.py": ["query"], "mm-press-key.py": ["act"],
    "mm-select-profile.py": ["query"], "decocare.session": [], "decocare.commands": [],
    "decocare.download": [],
}
PAGE_READERS = ("mm-decode-history-page.py", "list_history.py", "list_dates.py")
WRITE_TOOLS = ("mm-temp-basals.py", "mm-bolus.py", "mm-set-suspend.py", "mm-set-rtc.py",
               "mm-press-key.py", "mm-select-profile.py")
# tools whose module is written elsewhere and may not exist yet
OPTIONAL = {"mm-openaps.py": "decocare/tools/openaps.py"}
# stderr lines a failure may have besides its one error line: mm-openaps.py ends with a summary
# line ("N files written to DIR") after the line naming what was not written and why
EXTRA_LINES = {"mm-openaps.py": 1}


def _base(tool, port, serial=SERIAL):
    return ["--port", port] + (["--serial", serial] if serial else []) + BASE[tool]


def cases():
    """(id, tool, argv, expected exit code, needs the emulated pump)."""
    out = []

    def add(tool, argv, code, pump=False, name=None):
        out.append(("%s %s" % (tool, name or " ".join(argv)), tool, argv, code, pump))

    for tool in PUMP_TOOLS:
        add(tool, _base(tool, PUMP, "12345"), USAGE, name="five-digit serial")
        add(tool, _base(tool, PUMP, "abcdef"), USAGE, name="letters serial")
        add(tool, _base(tool, PUMP, None), USAGE, name="missing serial")
        add(tool, _base(tool, "{missing}"), PORT, name="port that does not exist")
        add(tool, _base(tool, "{dir}"), PORT, name="port is a folder")
        add(tool, _base(tool, "/dev/zero"), PORT, name="port is /dev/zero")
        add(tool, _base(tool, "{fifo}"), PORT, name="port is a FIFO")
        add(tool, _base(tool, "{garbage}"), PORT, name="port is a plain file")
        add(tool, _base(tool, PUMP) + ["--model", "999"], USAGE, name="unknown model")
        add(tool, _base(tool, PUMP) + ["--model", "nan"], USAGE, name="model nan")
        add(tool, _base(tool, PUMP) + ["--rf-minutes", "0"], USAGE, name="rf-minutes 0")
        add(tool, _base(tool, PUMP) + ["--rf-minutes", "1e400"], USAGE, name="rf-minutes 1e400")
        add(tool, _base(tool, PUMP) + ["--rf-minutes", "-5"], USAGE, name="rf-minutes -5")
        add(tool, _base(tool, PUMP) + ["--rf-minutes", "9" * 40], USAGE, name="rf-minutes huge")
        add(tool, _base(tool, PUMP) + ["--model", "515"], USAGE, pump=True, name="model the pump contradicts")
        add(tool, _base(tool, PUMP, "123456"), NO_RESPONSE, pump=True, name="serial of another pump")
    add("decocare.download", [PUMP, SERIAL, "extra"], USAGE, name="too many positionals")
    for key in ("under-file", "file", "zero", "fifo"):
        add("decocare.download", _base("decocare.download", PUMP) + ["--out", "{%s}" % key], USAGE,
            name="--out %s" % key)
        add("decocare.download", _base("decocare.download", PUMP) + ["--glucose", "--out", "{%s}" % key],
            USAGE, name="--glucose --out %s" % key)
    for tool in ("mm-pages.py", "mm-history.py", "mm-glucose.py"):
        for key in ("under-file", "file", "zero", "fifo"):
            add(tool, _base(tool, PUMP) + ["--save", "{%s}" % key], USAGE, name="--save %s" % key)
    for key in ("under-file", "dir", "fifo", "under-missing", "zero"):
        add("mm-send-comm.py", _base("mm-send-comm.py", PUMP) + ["--save", "{%s}" % key], USAGE,
            name="--save %s" % key)

    if "mm-openaps.py" in registry.TARGETS and (ROOT / OPTIONAL["mm-openaps.py"]).exists():
        tool = "mm-openaps.py"
        BASE[tool] = ["--out", "{dir}"]
        for name, argv, code, pump in [
                ("five-digit serial", _base(tool, PUMP, "12345"), USAGE, False),
                ("missing serial", _base(tool, PUMP, None), USAGE, False),
                ("port that does not exist", _base(tool, "{missing}"), PORT, False),
                ("port is a folder", _base(tool, "{dir}"), PORT, False),
                ("port is /dev/zero", _base(tool, "/dev/zero"), PORT, False),
                ("port is a FIFO", _base(tool, "{fifo}"), PORT, False),
                ("unknown model", _base(tool, PUMP) + ["--model", "999"], USAGE, False),
                ("model the pump contradicts", _base(tool, PUMP) + ["--model", "515"], USAGE, True),
                ("serial of another pump", _base(tool, PUMP, "123456"), NO_RESPONSE, True)]:
            add(tool, argv, code, pump=pump, name=name)
        for key in ("under-file", "file", "zero", "fifo"):
            add(tool, ["--port", PUMP, "--serial", SERIAL, "--out", "{%s}" % key], USAGE,
                name="--out %s" % key)
        add(tool, ["--port", PUMP, "--serial", SERIAL], USAGE, name="no --out")
        for hours in ("-1", "1e400", "nan", "9" * 40, "abc"):
            add(tool, _base(tool, PUMP) + ["--hours", hours], USAGE, name="--hours %s" % hours)
        add(tool, _base(tool, PUMP) + ["--only", "bogus"], USAGE, name="--only bogus")
        add(tool, _base(tool, PUMP) + ["--timezone", "Nowhere/Zone"], USAGE, name="unknown --timezone")

    # mm-send-comm.py: pages, opcodes, params
    send = ["--port", PUMP, "--serial", SERIAL]
    for page in ("-1", "1e400", "nan", "9" * 30, "4294967296"):
        add("mm-send-comm.py", send + ["ReadHistoryData", "--page", page], USAGE)
    add("mm-send-comm.py", send + ["ReadHistoryData", "--page", "4000"], USAGE, pump=True,
        name="ReadHistoryData page 4000 (beyond the pump's pages)")
    add("mm-send-comm.py", send + ["0x1FF"], USAGE)
    add("mm-send-comm.py", send + ["-0x1"], USAGE)
    add("mm-send-comm.py", send + ["Frobnicate"], USAGE)
    add("mm-send-comm.py", send + ["ReadRTC", "--params", "zz"], USAGE)
    add("mm-send-comm.py", send + ["Bolus"], REFUSED)
    add("mm-send-comm.py", send + ["SetRTC"], REFUSED)
    add("mm-send-comm.py", send + ["0x42"], REFUSED, pump=True, name="0x42 (Bolus on a 523)")
    add("mm-send-comm.py", send + ["0x4C"], REFUSED, pump=True, name="0x4C (TempBasal)")
    add("mm-send-comm.py", send + ["0xFE"], REFUSED, pump=True, name="0xFE (unknown opcode)")

    # mm-latest.py MINUTES
    for minutes in ("-5", "1e400", "nan", "9" * 40, "99999999999", "inf"):
        add("mm-latest.py", ["--port", PUMP, "--serial", SERIAL, minutes], USAGE)
    # mm-pages.py FIRST LAST
    for pages in (["-1"], ["1e400"], ["nan"], ["256"], ["9" * 40], ["3", "1"], ["0", "-1"]):
        add("mm-pages.py", ["--port", PUMP, "--serial", SERIAL] + pages, USAGE)
    # mm-glucose.py --pages
    for n in ("0", "-1", "1e400", "nan", "9" * 40):
        add("mm-glucose.py", ["--port", PUMP, "--serial", SERIAL, "--pages", n], USAGE)

    # write tools: numbers, clocks, files
    tb = ["--port", PUMP, "--serial", SERIAL]
    for rate in ("nan", "1e400", "inf", "-inf", "abc"):
        add("mm-temp-basals.py", tb + ["set", "--rate", rate, "--duration", "30"], USAGE)
    for duration in ("-30", "99999", "1e400", "nan", "9" * 40, "abc"):
        add("mm-temp-basals.py", tb + ["set", "--rate", "1", "--duration", duration], USAGE)
    add("mm-temp-basals.py", tb + ["set", "--rate", "1"], USAGE, name="set without --duration")
    add("mm-temp-basals.py", tb + ["set", "--rate", "1", "--duration", "30", "--max-basal", "nan"], USAGE)
    add("mm-temp-basals.py", tb + ["set", "--rate", "-1", "--duration", "30"], REFUSED, pump=True)
    add("mm-temp-basals.py", tb + ["set", "--rate", "1e300", "--duration", "30"], REFUSED, pump=True)
    add("mm-temp-basals.py", tb + ["set", "--rate", "1", "--duration", "45"], REFUSED, pump=True)
    add("mm-temp-basals.py", tb + ["set", "--rate", "0.0123", "--duration", "30"], REFUSED, pump=True)
    for percent in ("-5", "999", "1e400", "nan", "9" * 40):
        add("mm-temp-basals.py", tb + ["percent", "--percent", percent, "--duration", "30"],
            USAGE if percent in ("1e400", "nan") else REFUSED, pump=percent not in ("1e400", "nan"))
    for key in ("dir", "fifo", "zero", "empty", "garbage", "missing", "notjson", "list",
                "nanjson", "hugejson", "percentjson"):
        add("mm-temp-basals.py", tb + ["set", "--from", "{%s}" % key], USAGE, name="set --from %s" % key)
    add("mm-temp-basals.py", tb + ["set", "--from", "{negativejson}"], REFUSED, pump=True,
        name="set --from a negative rate")
    add("mm-temp-basals.py", tb + ["set", "--from", "{baddurationjson}"], REFUSED, pump=True,
        name="set --from a huge duration")
    add("mm-temp-basals.py", tb + ["set", "--from", "{garbage}", "--rate", "1"], USAGE,
        name="--from and --rate")
    add("mm-temp-basals.py", tb + ["sideways"], USAGE)
    for units in ("nan", "1e400", "inf", "abc"):
        add("mm-bolus.py", tb + [units, "--yes"], USAGE)
    add("mm-bolus.py", tb + ["1.0"], USAGE, name="bolus without --yes")
    add("mm-bolus.py", tb + ["-1", "--yes"], REFUSED, pump=True)
    add("mm-bolus.py", tb + ["1e300", "--yes"], REFUSED, pump=True)
    add("mm-bolus.py", tb + ["1000", "--yes"], REFUSED, pump=True)
    add("mm-bolus.py", tb + ["0.0123", "--yes"], REFUSED, pump=True)
    add("mm-bolus.py", tb + ["9" * 40, "--yes"], REFUSED, pump=True, name="bolus of 40 nines")
    add("mm-set-suspend.py", tb + ["sideways"], USAGE)
    add("mm-set-suspend.py", tb + ["resume"], REFUSED, pump=True, name="resume a running pump")
    for to in ("garbage", "2024-13-45T99:99:99", "2024-02-30T10:00:00", "", "T", "99999-01-01",
               "-0001-01-01", "2024-05-01T12:00:00+99:00"):
        add("mm-set-rtc.py", tb + ["set", "--to", to], USAGE, name="set --to %r" % to)
    for to in ("9999-12-31T23:59:59", "2300-01-01T00:00:00", "1900-01-01T00:00:00",
               "0001-01-01T00:00:00"):
        add("mm-set-rtc.py", tb + ["set", "--to", to], REFUSED, pump=True, name="set --to %s" % to)
    add("mm-set-rtc.py", tb + ["set", "--to", "2024-05-01T12:00:00+14:00", "--timezone", "Nowhere/Zone"],
        USAGE, name="unknown --timezone")
    add("mm-set-rtc.py", tb + ["set", "--timezone", "../../etc/passwd"], USAGE, name="--timezone a path")
    add("mm-press-key.py", tb + ["launch"], USAGE)
    add("mm-press-key.py", tb, USAGE, name="no key")
    add("mm-select-profile.py", tb + ["Z"], USAGE)
    for tool in WRITE_TOOLS:
        add(tool, ["--port", "{missing}", "--serial", SERIAL] + BASE[tool] + ["--json"], PORT,
            name="--json, port that does not exist")

    # page files
    for tool in PAGE_READERS:
        for key in ("dir", "fifo", "zero", "empty", "garbage", "missing", "noise"):
            add(tool, ["--model", MODEL, "{%s}" % key], errors.EXIT_USAGE if key != "noise"
                else errors.EXIT_PARTIAL, name="page %s" % key)
        add(tool, ["--model", "999", "{garbage}"], USAGE, name="unknown model")
        add(tool, ["{garbage}"], USAGE, name="no model")
    for key in ("dir", "fifo", "zero", "empty", "garbage", "missing"):
        add("list_history.py", ["--glucose", "--model", MODEL, "{%s}" % key], USAGE,
            name="--glucose page %s" % key)
        add("list_history.py", ["--summary", "--model", MODEL, "{%s}" % key], USAGE,
            name="--summary page %s" % key)
    # the exports and the report read saved pages (no pump)
    csv = ["--format", "carelink-csv", "--model", MODEL]
    report = ["--model", MODEL, "--out", "{dir}"]
    for key in ("dir", "fifo", "zero", "empty", "garbage", "missing", "noise"):
        code = errors.EXIT_PARTIAL if key == "noise" else USAGE
        add("mm-export.py", csv + ["{%s}" % key], code, name="carelink-csv page %s" % key)
        add("mm-export.py", ["--format", "nightscout-treatments", "--model", MODEL, "{%s}" % key],
            code, name="nightscout page %s" % key)
        add("mm-report.py", report + ["{%s}" % key], code, name="page %s" % key)
    for key in ("dir", "fifo", "zero", "empty", "garbage", "missing"):
        add("mm-export.py", ["--format", "nightscout-entries", "--glucose", "{%s}" % key], USAGE,
            name="nightscout-entries glucose page %s" % key)
    add("mm-export.py", ["--format", "carelink-csv", "{garbage}"], USAGE, name="no model")
    add("mm-export.py", ["--format", "carelink-csv", "--model", "999", "{garbage}"], USAGE,
        name="unknown model")
    add("mm-export.py", ["--format", "bogus", "--model", MODEL, "{garbage}"], USAGE, name="--format bogus")
    add("mm-export.py", ["--model", MODEL, "{garbage}"], USAGE, name="no --format")
    add("mm-export.py", csv, USAGE, name="no pages")
    add("mm-export.py", ["--format", "nightscout-entries"], USAGE, name="entries without --glucose")
    for key in ("dir", "under-file", "under-missing", "fifo"):
        add("mm-export.py", csv + ["--out", "{%s}" % key, "{garbage}"], USAGE, name="--out %s" % key)
    add("mm-export.py", csv + ["--upload", "http://127.0.0.1:9", "{garbage}"], USAGE,
        name="--upload with carelink-csv")
    for url in ("ftp://x", "not a url", "http://"):
        add("mm-export.py", ["--format", "nightscout-treatments", "--model", MODEL, "--upload", url,
                             "{garbage}"], USAGE, name="--upload %r" % url)
    add("mm-export.py", ["--format", "nightscout-treatments", "--model", MODEL, "--timezone",
                         "Nowhere/Zone", "{garbage}"], USAGE, name="unknown --timezone")
    add("mm-report.py", ["--out", "{dir}", "{garbage}"], USAGE, name="no model")
    add("mm-report.py", ["--model", "999", "--out", "{dir}", "{garbage}"], USAGE, name="unknown model")
    add("mm-report.py", ["--model", MODEL, "{garbage}"], USAGE, name="no --out")
    for key in ("under-file", "under-missing", "fifo", "file"):
        add("mm-report.py", ["--model", MODEL, "--out", "{%s}" % key, "{garbage}"], USAGE,
            name="--out %s" % key)
    for day in ("garbage", "2024-13-45", "99999-01-01", ""):
        add("mm-report.py", report + ["{garbage}", "--days", day], USAGE, name="--days %r" % day)
        add("mm-report.py", report + ["--from", day, "{garbage}"], USAGE, name="--from %r" % day)
    add("list_opcodes.py", ["--model", "999"], USAGE)
    add("list_opcodes.py", ["--model", "-1"], USAGE)

    # transcripts
    for key in ("dir", "fifo", "zero", "empty", "garbage", "missing", "noise"):
        add("decocare.replay", ["--check", "{%s}" % key], USAGE, name="--check %s" % key)
    add("decocare.replay", [], USAGE, name="no --check")
    add("decocare.replay", ["--check", "{garbage}", "--model", "999"], USAGE, name="unknown model")
    for key in ("missing", "dir", "fifo", "zero", "garbage"):
        add("mm-send-comm.py", ["--port", "replay://{%s}" % key, "--serial", SERIAL, "ReadRTC"],
            PORT, name="replay:// of %s" % key)
    # an empty recording holds no answer: the replay stops at the first request (ReplayMismatch)
    add("mm-send-comm.py", ["--port", "replay://{empty}", "--serial", SERIAL, "ReadRTC"],
        errors.EXIT_ERROR, name="replay:// of an empty file")

    # the stick alone, the scan
    for port, name in (("{missing}", "missing"), ("{dir}", "folder"), ("/dev/zero", "/dev/zero"),
                       ("{fifo}", "FIFO"), ("{garbage}", "plain file"), ("bogus://x", "unknown URL"),
                       ("emulator://999999", "emulator:// that does not exist")):
        add("decocare.stick", [port], PORT, name="port %s" % name)
    add("decocare.stick", ["--port", PUMP, "extra"], USAGE, name="too many positionals")
    add("decocare.scan", ["--bogus"], USAGE)

    # explain
    for key in ("missing", "file", "zero", "fifo"):
        add("decocare.explain", ["{%s}" % key], USAGE, name="logs %s" % key)
    add("decocare.explain", ["{logs-fifo}", "--result", "download=5"], 0, name="logs holding FIFOs")
    add("decocare.explain", ["--model", "{logs-fifo}"], USAGE, name="--model of logs holding FIFOs")
    for result in ("bogus=1", "download=x", "download=-1", "download"):
        add("decocare.explain", ["{dir}", "--result", result], USAGE)
    for window in (("1e400", "1"), ("nan", "1"), ("-1", "1"), ("abc", "1")):
        add("decocare.explain", ["{dir}", "--window"] + list(window), USAGE)
    add("decocare.explain", ["{dir}", "--serial", "12"], USAGE)

    # docs
    add("decocare.tools.docs", ["--bogus"], USAGE)

    # the emulator's own arguments
    for emulator in ("decocare.emulator", "decocare-emulator"):
        base = ["--timing", "fast", "--link", ""]
        for spec in ("nak_code=999", "nak_code=-1", "nak_code=abc", "nak=2", "nak=-0.1", "nak=nan",
                     "bogus=1", "seed=-1", "seed=1e400", "timeout", "asleep=1", "nak=1e400"):
            add(emulator, base + ["--faults", spec], USAGE, name="--faults %s" % spec)
        for cur in ("-5", "1e400", "nan", "9" * 40, "4294967296"):
            add(emulator, base + ["--cur-page", cur], USAGE, name="--cur-page %s" % cur)
        for seed in ("-1", "1e400", "nan"):
            add(emulator, base + ["--seed", seed], USAGE, name="--seed %s" % seed)
        for key in ("dir", "under-file", "under-missing", "fifo", "zero"):
            add(emulator, base + ["--ledger", "{%s}" % key], USAGE, name="--ledger %s" % key)
        for key in ("under-file", "under-missing", "dir", "file", "fifo"):
            add(emulator, ["--timing", "fast", "--link", "{%s}" % key], USAGE, name="--link %s" % key)
        for key in ("missing", "file", "empty", "pages-fifo", "pages-dir", "pages-garbage", "zero"):
            add(emulator, base + ["--pages", "{%s}" % key], USAGE, name="--pages %s" % key)
        add(emulator, base + ["--model", "999"], USAGE)
        add(emulator, base + ["--serial", "12"], USAGE)
        add(emulator, base + ["--timing", "slow"], USAGE)
    return out


CASES = cases()


def test_the_matrix_covers_every_tool():
    """Every registered tool is in the matrix (a new tool must be added to it)."""
    covered = {tool for _, tool, _, _, _ in CASES}
    for name, target, _ in registry.TOOLS:
        if name in OPTIONAL and not (ROOT / OPTIONAL[name]).exists():
            continue
        assert name in covered, "%s is not in the bad-input matrix" % name


# --- running it --------------------------------------------------------------------------------
#
# A tool start costs ~0.17 s of CPU, mostly imports; 500 starts on a 2-CPU machine would take
# most of a minute.  So a launcher process imports every tool once and forks one child per case:
# each case is still its own process running ``registry.launch(tool, argv)`` -- what every bin/
# script, console script and ``python -m`` entry runs -- with its own stdin (/dev/null), stdout
# and stderr, killed when it outlives TIMEOUT.

LAUNCHER = r"""
import json, os, select, signal, sys, time, traceback
from decocare.tools import registry
for name in registry.TARGETS:
    try:
        registry.resolve(name)
    except ImportError:
        pass
running, closed, buf, inp = {}, False, b"", sys.stdin.fileno()

def report(**what):
    sys.stdout.write(json.dumps(what) + "\n")
    sys.stdout.flush()

def child(req):
    code = 1
    try:
        os.setpgid(0, 0)
        os.chdir(req["cwd"])
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            new = os.open(path, flags, 0o644)
            os.dup2(new, fd)
            os.close(new)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            registry.launch(req["tool"], req["argv"])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)

while not closed or running:
    ready, _, _ = select.select([] if closed else [inp], [], [], 0.005)
    if ready:
        chunk = os.read(inp, 1 << 16)
        closed = not chunk
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            req = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(req)
            running[pid] = (req["id"], time.monotonic() + req["timeout"])
    while running:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if not pid:
            break
        ident, _ = running.pop(pid)
        report(id=ident, code=os.waitstatus_to_exitcode(status))
    now = time.monotonic()
    for pid, (ident, deadline) in list(running.items()):
        if now > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            running.pop(pid)
            report(id=ident, code=None)
"""


class Launcher:
    """The forking launcher: ``run(tool, argv, cwd, timeout)`` -> (exit code or None for a
    hang, stdout, stderr)."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.proc = subprocess.Popen([sys.executable, "-c", LAUNCHER], cwd=str(ROOT), env=_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()
        self.waiting = {}
        self.ids = iter(range(10 ** 9))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            done = json.loads(line)
            with self.lock:
                slot = self.waiting.pop(done["id"])
            slot[1] = done["code"]
            slot[0].set()

    def run(self, tool, argv, cwd, timeout=TIMEOUT):
        with self.lock:
            ident = next(self.ids)
            slot = self.waiting[ident] = [threading.Event(), None]
            out, err = self.folder / ("%d.out" % ident), self.folder / ("%d.err" % ident)
            self.proc.stdin.write(json.dumps(dict(id=ident, tool=tool, argv=argv, cwd=str(cwd),
                                                  out=str(out), err=str(err), timeout=timeout)) + "\n")
            self.proc.stdin.flush()
        if not slot[0].wait(timeout + 30):
            raise AssertionError("the launcher itself stopped answering")
        return slot[1], out.read_text(errors="replace"), err.read_text(errors="replace")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=TIMEOUT + 10)


def _env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("DECOCARE_PORT", "DECOCARE_SERIAL", "SERIAL", "PORT", "DECOCARE_MODEL")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Pumps:
    """Emulated pumps on ptys, one per running case at a time, each with its ledger."""

    def __init__(self, folder, count):
        self.free = queue.Queue()
        self.all = []
        for i in range(count):
            ledger = os.path.join(folder, "ledger-%d.jsonl" % i)
            emu = Emulator(model=MODEL, serial=SERIAL, timing="fast", ledger=ledger)
            port = emu.serve_pty()
            self.all.append(emu)
            self.free.put((emu, port))

    def close(self):
        for emu in self.all:
            emu.close()


def _changes(entries):
    """Ledger entries of commands that change the pump (PowerControl only turns its radio on)."""
    return [e for e in entries if e["op"] != "PowerControl" and commands.by_name(e["op"]).write]


def run_case(case, files, pumps, launcher, cwd):
    ident, tool, argv, code, needs_pump = case
    emu = port = None
    if needs_pump:
        emu, port = pumps.free.get()
    try:
        values = dict(files, pump=port or "/nonexistent/pump")
        args = [a.replace("{", "{0[").replace("}", "]}").format(values) if "{" in a else a for a in argv]
        before = len(emu.ledger) if emu else 0
        returncode, _, stderr = launcher.run(tool, args, cwd)
        if returncode is None:
            return ident, ["HANG: no end within %d s" % TIMEOUT]
        problems = []
        lines = stderr.splitlines()
        if returncode != code:
            problems.append("exit %d, expected %d" % (returncode, code))
        allowed = {0} if not code else {1, 1 + EXTRA_LINES.get(tool, 0)}
        if len(lines) not in allowed:
            problems.append("%d stderr lines, expected %s" % (len(lines), max(allowed)))
        if "Traceback" in stderr:
            problems.append("traceback")
        if emu is not None:
            changed = _changes(emu.ledger[before:])
            if changed:
                problems.append("the pump executed %s" % [e["op"] for e in changed])
        if problems:
            problems.append("stderr: %r" % stderr[-600:])
        return ident, problems
    finally:
        if needs_pump:
            pumps.free.put((emu, port))


def run_matrix(folder, cases=CASES, workers=WORKERS):
    """{case id: [problems]} for the cases that failed."""
    folder = pathlib.Path(folder)
    files = bad_files(folder / "files")
    cwd = folder / "cwd"
    cwd.mkdir()
    (folder / "io").mkdir()
    pumps = Pumps(str(folder), workers)
    launcher = Launcher(folder / "io")
    try:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            done = list(pool.map(lambda c: run_case(c, files, pumps, launcher, str(cwd)), cases))
    finally:
        launcher.close()
        pumps.close()
    return {ident: problems for ident, problems in done if problems}


def test_every_tool_gives_one_line_and_its_exit_code_for_every_bad_input(tmp_path):
    failures = run_matrix(tmp_path)
    assert not failures, "%d of %d cases failed:\n%s" % (
        len(failures), len(CASES), "\n".join("%s: %s" % (k, "; ".join(v)) for k, v in sorted(failures.items())))
    assert len(CASES) > 400


if __name__ == "__main__":        # python tests/test_bad_input.py: the failures, one per line
    import tempfile
    import time
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        found = run_matrix(tmp)
    for ident, problems in sorted(found.items()):
        print("%s: %s" % (ident, "; ".join(problems)))
    print("%d cases, %d failed, %.1f s" % (len(CASES), len(found), time.monotonic() - started))


def _entry_point(tool):
    """How a user starts ``tool``: bin/ script, top-level script, or python -m."""
    if (ROOT / "bin" / tool).exists() and tool.endswith(".py"):
        return [sys.executable, str(ROOT / "bin" / tool)]
    if (ROOT / tool).exists():
        return [sys.executable, str(ROOT / tool)]
    return [sys.executable, "-m", tool if tool != "decocare-emulator" else "decocare.emulator"]


def test_a_sample_through_the_real_entry_points(tmp_path):
    """The launcher's forked runs stand for real starts: one case of each tool (without a pump),
    started the way a user starts it, gives the same one line and exit code."""
    files = bad_files(tmp_path / "files")
    sample, seen = [], set()
    for case in CASES:
        if not case[4] and case[1] not in seen and "{pump}" not in " ".join(case[2]):
            seen.add(case[1])
            sample.append(case)

    def run(case):
        ident, tool, argv, code, _ = case
        args = [a.replace("{", "{0[").replace("}", "]}").format(files) if "{" in a else a for a in argv]
        done = subprocess.run(_entry_point(tool) + args, cwd=str(tmp_path), env=_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
        lines = done.stderr.splitlines()
        ok = done.returncode == code and len(lines) in {1, 1 + EXTRA_LINES.get(tool, 0)} \
            and "Traceback" not in done.stderr
        return None if ok else "%s: exit %d, stderr %r" % (ident, done.returncode, done.stderr[-300:])

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(run, sample) if f]
    assert len(sample) >= 20 and not failures, failures

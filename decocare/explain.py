"""logs/explain.log: what a status-quo run found, in a dozen lines a person reads first.

Built only from what the run left in logs/ (the experiments' output and the raw pages, whose
CRCs are checked here again) plus the experiments' exit codes and the host clock around the
commands experiment, both given by status-quo.sh.  It never talks to the stick.  The text holds
no run-to-run noise except real data and times, so ``git diff logs/`` shows what changed.

``python -m decocare.explain --model logs`` prints only the pump model the logs name
(bin/common's run_regress needs it to decode the pages).
"""
import datetime
import os
import re
import stat

from . import errors
from .pages import page_crc_ok, parse_page_file
from .models import get_model

EXPERIMENTS = ("baseline.stick", "session", "stick", "commands", "download", "postmortem.stick")
PAGE_KINDS = (("history pages", "ReadHistoryData"), ("glucose pages", "ReadGlucoseHistory"))

# lines the verbose logging adds between a tool's own output lines
_NOISE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL):|^[0-9a-f]{4}   0x")


MAX_LOG = 64 << 20      # a log bigger than this is read in part (explain reads, never hangs)


def _regular(path):
    """True for a regular file: a FIFO in logs/ would block the read, /dev/zero never end."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _text(logs, name):
    path = os.path.join(logs, name + ".log")
    if not _regular(path):
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(MAX_LOG)
    except OSError:
        return ""


def _own_lines(text):
    return [line for line in text.splitlines() if line.strip() and not _NOISE.match(line)]


def fields(text):
    """``key: value`` lines of a tool's output (python -m decocare.stick, .session)."""
    out = {}
    for line in _own_lines(text):
        key, sep, value = line.partition(":")
        if sep and value.strip() and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


def sections(text):
    """``## Name`` sections of ``python -m decocare.commands`` output -> {name: [value lines]}."""
    out, current = {}, None
    for line in _own_lines(text):
        if line.startswith("## "):
            current = out.setdefault(line[3:].strip(), [])
        elif line.startswith("# "):
            current = out.setdefault("#", [line[2:].strip()])
        elif current is not None:
            current.append(line.strip())
    return out


def _items(lines):
    """``- key: value`` lines -> dict."""
    return {k.strip("- ").strip(): v.strip() for k, _, v in (l.partition(":") for l in lines) if _}


def model_in(logs):
    """The pump model the run's logs name (session, else commands), or None."""
    found = fields(_text(logs, "session")).get("model")
    if found:
        return found
    head = sections(_text(logs, "commands")).get("#", [""])[0]
    match = re.search(r"model (\w+)", head)
    return match.group(1) if match else None


def _pages(logs, prefix):
    """{page number: crc ok} for logs/<prefix>-page-N.data."""
    pages = {}
    for name in os.listdir(logs):
        found = parse_page_file(name)
        path = os.path.join(logs, name)
        if found and found[0] == prefix and _regular(path):
            try:
                with open(path, "rb") as fh:
                    pages[found[1]] = page_crc_ok(fh.read(1 << 16))
            except OSError:
                pages[found[1]] = False
    return pages


def _ranges(numbers):
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out, numbers = [], sorted(numbers)
    start = prev = None
    for n in numbers + [None]:
        if start is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = n
    return ", ".join(out)


def describe_pages(pages):
    if not pages:
        return "none downloaded"
    bad = [n for n, ok in pages.items() if not ok]
    crc = "every CRC valid" if not bad else "CRC FAILED on %s" % _ranges(bad)
    return "%d (%s), %s" % (len(pages), _ranges(pages), crc)


def _stick(logs):
    base = fields(_text(logs, "baseline.stick"))
    if "description" not in base:
        return "no answer (see baseline.stick.log)"
    return "%s, serial %s, firmware %s, radio %s" % (base["description"], base.get("serial", "?"),
                                                     base.get("software.version", "?"),
                                                     base.get("rf.freq", "?"))


def _signal(logs):
    parts = []
    for name, label in (("baseline.stick", "before"), ("stick", "pump awake"), ("postmortem.stick", "after")):
        value = fields(_text(logs, name)).get("signal strength")
        parts.append("%s %s" % (label, value if value is not None else "?"))
    return ", ".join(parts)


def _counters(logs):
    """The stick's error counters after the run (non-zero ones only)."""
    stats = fields(_text(logs, "postmortem.stick"))
    bad = []
    for which in ("radio stats", "usb stats"):
        for pair in stats.get(which, "").split():
            key, _, value = pair.partition("=")
            if key in ("crc_errors", "sequence_errors", "naks", "timeouts") and value not in ("", "0"):
                bad.append("%s %s=%s" % (which.split()[0], key, value))
    return ", ".join(bad) or "no errors counted"


def _clock(pump_clock, window):
    """'pump 2024-05-01T12:00:03, drift +2 s' against the host clock while commands ran."""
    if not pump_clock:
        return "unknown"
    try:
        pump = datetime.datetime.fromisoformat(pump_clock)
    except ValueError:
        return "pump %s (not a date)" % pump_clock
    if not window:
        return "pump %s (host clock not recorded)" % pump_clock
    start, end = (datetime.datetime.fromtimestamp(t) for t in window)
    # both clocks are read to the second: the pump read happened in [start, end + 1 s)
    low = round((pump - end).total_seconds()) - 1
    high = round((pump - start).total_seconds()) + 1
    if low < 0 < high:
        drift = "no drift measurable (within %d s)" % max(-low, high)
    elif low >= 0:
        drift = "AHEAD by %d to %d s" % (low, high)
    else:
        drift = "BEHIND by %d to %d s" % (-high, -low)
    return "pump %s, host %s: %s" % (pump_clock, start.replace(microsecond=0).isoformat(), drift)


def _has_cgm(model):
    try:
        return get_model(model).has_cgm
    except errors.DecocareError:
        return False


def _first(section):
    return section[0] if section else None


# what a failing tool's own error line looks like: the one line a typed error becomes
# (``python -m decocare.X: ...``, ``mm-...: ...``), or the download's missing-pages line
_FAILURE = re.compile(r"^(python -m decocare\.\w+|mm-[\w-]+\.py|decocare-\w+): "
                      r"|pages the pump reported are missing|pages before the end of the history are missing")


def _error_line(logs, name):
    """The first failure line an experiment printed (one experiment may run a tool twice, as
    run_download does for history then glucose pages: the first failure is what failed);
    else its last own line."""
    lines = _own_lines(_text(logs, name))
    failures = [line for line in lines if _FAILURE.search(line)]
    return failures[0] if failures else lines[-1] if lines else "no output"


def explain(logs, port=None, serial=None, results=None, emulated=False, window=None):
    """The explain.log text."""
    results = results or {}
    found = sections(_text(logs, "commands"))
    model = model_in(logs)
    lines = ["# status-quo: what was found", ""]
    add = lambda key, value: lines.append("%-14s %s" % (key + ":", value))
    add("port", "%s%s" % (port or "?", " (the built-in emulated pump)" if emulated else ""))
    add("stick", _stick(logs))
    add("signal", _signal(logs))
    add("counters", _counters(logs))
    pump_id = _first(found.get("ReadPumpID"))
    ids = "serial %s" % (serial or "?")
    if pump_id and serial and pump_id != serial:
        ids += " (the pump says %s!)" % pump_id
    add("pump", "model %s, %s, firmware %s" % (model or "unknown", ids,
                                               _first(found.get("ReadFirmwareVersion")) or "unknown"))
    add("clock", _clock(_first(found.get("ReadRTC")), window))
    battery = _items(found.get("ReadBatteryStatus", []))
    add("battery", "%s, %s V" % (battery["status"], battery.get("voltage", "?")) if battery else "unknown")
    reservoir = _first(found.get("ReadRemainingInsulin"))
    add("reservoir", "%s U" % reservoir if reservoir else "unknown")
    status = _items(found.get("ReadPumpStatus", []))
    if status:
        add("status", ", ".join([status.get("status", "?")] + [
            key.upper() if status.get(key) == "True" else "not " + key for key in ("bolusing", "suspended")]))
    temp = _items(found.get("ReadBasalTemp", []))
    if temp:
        add("temp basal", "none running" if temp.get("duration") == "0" else
            "%s %s for %s more min" % (temp.get("temp"), temp.get("rate"), temp.get("duration")))
    for label, prefix in PAGE_KINDS:
        pages = _pages(logs, prefix)
        if pages or prefix == "ReadHistoryData" or _has_cgm(model):
            add(label, describe_pages(pages))
    lines.append("")
    if not results:
        add("experiments", "exit codes not given (status-quo.sh gives them)")
        return "\n".join(lines) + "\n"
    add("experiments", ", ".join("%s %s" % (name, "ok" if results.get(name) == 0 else
                                           "not run" if name not in results else "FAILED")
                                 for name in EXPERIMENTS))
    failed = [name for name in EXPERIMENTS if results.get(name, 0) != 0]
    if not failed:
        add("errors", "none")
    for name in failed:
        add("error", "%s exit %d: %s" % (name, results[name], _error_line(logs, name)))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":      # python -m decocare.explain: the command line is decocare/tools/explain.py
    from decocare.tools.registry import launch
    launch("decocare.explain")

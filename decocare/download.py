"""Download every history page (or glucose page) of a pump into files, CRC-checked, and leave a
manifest that says what this run got.

Which pages: ReadCurPageNumber's value v gives pages 0..min(v, 35) (ecc1's reading, which
matches the vendor software, spec §5.3); glucose: ReadCurGlucosePageNumber's newest page and
page count.  Those pages are what the pump says it has, so a NAK or a failure inside that range
is a *missing page*, never the end of the history: it is tried again after the other pages and,
if still missing, the download fails naming it (oref0 PR#702: history that stopped short
without an error led to an overdose).  Only where the pump tells no range (an x12 refuses 0x9D)
does a NAK 0x0D/0x08 end the history, and only when the pump repeats it.

A file ``<kind>-page-N.data`` is always a whole, CRC-valid page written by this run: pages of an
earlier run in the range are set aside (``.previous``) when this run cannot read them again, and
``<kind>.manifest.json`` lists pump, range, each page's outcome and sha256.
"""
import datetime
import hashlib
import json
import os
import sys
import time
from collections import namedtuple

from . import __version__
from .errors import (EXIT_OK, NAK_NO_PAGE, NAK_REFUSED, CommError, DecocareError, NoResponse,
                     PortError, Refused, StickSilent)
from .commands import asked_again
from .models import MAX_HISTORY_PAGES
from .pages import page_crc_ok, page_file

END_CODES = (NAK_NO_PAGE, NAK_REFUSED)      # how a pump says a page does not exist (spec §5.1)
RETRY_ROUNDS = 2              # extra rounds over the pages still missing, after the others
END_CONFIRM = 3               # an unbounded history ends at a page NAKed this many times in a row
FATAL = (StickSilent, PortError)   # no page can come any more: the download stops at once
GIVE_UP_AFTER = 3             # pages lost in a row: wake the pump (once per round), else stop

# pages: the page numbers to read, newest first; bounded: the pump told the range (every page in
# it must arrive); reported: what the pump said (for the manifest and the message)
Plan = namedtuple("Plan", "kind pages bounded reported")


def plan(pump, glucose=False):
    """The pages the pump says it has, newest first."""
    if glucose:
        info = asked_again(lambda: pump.read("ReadCurGlucosePageNumber"))   # a stray NAK
        newest = info["page"]
        pages = list(range(newest, max(-1, newest - info["glucose"]), -1))
        return Plan("ReadGlucoseHistory", pages, True, {"ReadCurGlucosePageNumber": info})
    value = pump.cur_page_number()
    if value is None:                                  # no 0x9D (x12): the model's page count
        pages = list(range(pump.model.history_pages))
        return Plan("ReadHistoryData", pages, False,
                    {"ReadCurPageNumber": None, "model_pages": len(pages)})
    return Plan("ReadHistoryData", list(range(min(value, MAX_HISTORY_PAGES - 1) + 1)), True,
                {"ReadCurPageNumber": value})


def page_numbers(pump, glucose=False):
    """The pages to ask for, newest first (``plan(...).pages``)."""
    return plan(pump, glucose).pages


def save(path, data):
    """Write through a temporary name so a file under the final name is always whole."""
    tmp = path + ".part"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class Report:
    """What one download did: ``saved`` page numbers, ``failed`` {page: error}, ``end`` the page
    that ended an unbounded history (None), ``stale`` files set aside or left from older runs."""

    def __init__(self, plan_):
        self.plan = plan_
        self.saved, self.failed, self.attempts = [], {}, {}
        self.end, self.stale = None, []
        self.hashes = {}
        self.fatal = None       # the stick froze or went away: the download stopped there

    @property
    def complete(self):
        return not self.failed

    @property
    def exit_code(self):
        if not self.failed:
            return EXIT_OK
        if self.fatal is not None:
            return self.fatal.exit_code
        return next(iter(self.failed.values())).exit_code

    def missing_line(self):
        pages = sorted(self.failed, reverse=self.plan.kind == "ReadGlucoseHistory")
        if not self.plan.bounded:
            return "%d %s pages before the end of the history are missing: %s" % (
                len(pages), _label(self.plan.kind), " ".join(map(str, pages)))
        return "%d of the %d %s pages the pump reported are missing: %s" % (
            len(pages), len(self.plan.pages), _label(self.plan.kind), " ".join(map(str, pages)))


def _label(kind):
    return "glucose" if kind == "ReadGlucoseHistory" else "history"


def download(pump, out_dir, glucose=False, log=None, serial=None):
    """Read the pages into ``out_dir``, progress to ``log`` (stderr); returns a ``Report``.  A page
    is tried (each try = the session's bounded attempts) in up to 1 + RETRY_ROUNDS rounds."""
    log = log or sys.stderr
    started = _now()
    the_plan = plan(pump, glucose)
    kind, report = the_plan.kind, Report(the_plan)
    read = pump.glucose_page if glucose else pump.history_page
    os.makedirs(out_dir, exist_ok=True)
    _set_aside_old(out_dir, the_plan, report)
    n = len(the_plan.pages)
    print("%s: the pump reports %d page%s%s; reading them into %s" % (
        kind, n, "s" * (n != 1), "" if the_plan.bounded else " at most (it tells no range)", out_dir),
        file=log)
    pending = list(the_plan.pages)
    try:
        for round_ in range(1 + RETRY_ROUNDS):
            if round_:
                print("retrying %d missing page%s: %s" % (len(pending), "s" * (len(pending) != 1),
                                                       " ".join(map(str, pending))), file=log)
            pending = _round(pump, read, pending, out_dir, report, log, round_)
            if not pending:
                break
    except FATAL as exc:
        # a frozen or vanished stick answers no page: stop now (bounded), name what is missing
        report.fatal = exc
        pending = [p for p in the_plan.pages
                   if p not in report.hashes and (report.end is None or p < report.end)]
        for page in pending:
            report.failed.setdefault(page, exc)
        print("the download stopped: %s" % exc, file=log)
    for page in pending:
        report.failed.setdefault(page, NoResponse("not read"))
    for page in report.failed:
        _keep_previous(out_dir, kind, page, report)
    write_manifest(out_dir, report, pump, serial, started)
    if report.fatal is not None:
        raise type(report.fatal)("%s; %s" % (report.fatal, report.missing_line()))
    return report


def _round(pump, read, pages, out_dir, report, log, round_):
    """One pass over ``pages``; returns those still missing (in order)."""
    missing, lost_in_row, woke = [], 0, False
    for i, page in enumerate(pages):
        if report.end is not None and page > report.end:
            continue
        start = time.monotonic()
        report.attempts[page] = report.attempts.get(page, 0) + 1
        try:
            data = read(page)
        except FATAL:
            raise
        except Refused as exc:
            data = None
            code = exc.code
            if not report.plan.bounded and code in END_CODES:
                data, exc = _confirm_end(read, page, report, exc)
                if data is None and exc is None:
                    report.end = page
                    for later in [p for p in report.failed if p >= page]:
                        del report.failed[later]
                    print("page %d: the pump has no such page (NAK 0x%02x, %d times): end of history"
                          % (page, code, END_CONFIRM), file=log)
                    return [p for p in missing if p < page]
            if data is None:
                report.failed[page] = exc
                missing.append(page)
                print("page %d: NOT SAVED (the pump refused it%s): %s" % (
                    page, ", yet reported it" if report.plan.bounded else "", exc), file=log)
                continue
        except CommError as exc:
            report.failed[page] = exc
            missing.append(page)
            lost_in_row += 1
            print("page %d: NOT SAVED (could not be read intact): %s" % (page, exc), file=log)
            if lost_in_row >= GIVE_UP_AFTER:
                if woke or not _wake(pump, log):
                    rest = [p for p in pages[i + 1:] if report.end is None or p <= report.end]
                    print("%d pages in a row lost: %d more not tried in this round"
                          % (lost_in_row, len(rest)), file=log)
                    for p in rest:
                        report.failed.setdefault(p, exc)
                    return missing + rest
                woke, lost_in_row = True, 0
            continue
        lost_in_row = 0
        report.failed.pop(page, None)
        path = os.path.join(out_dir, page_file(report.plan.kind, page))
        save(path, data)
        report.saved.append(page)
        report.hashes[page] = hashlib.sha256(data).hexdigest()
        print("page %d: ok, %d bytes, CRC16 valid, %.1f s (%d/%d) -> %s"
              % (page, len(data), time.monotonic() - start, len(report.saved),
                 len(report.plan.pages), path), file=log)
    return missing


def _confirm_end(read, page, report, exc):
    """A NAK 0x0D/0x08 ends an unbounded history only when the pump repeats it (an injected or
    transient NAK must not cut the history short).  Returns (page data, None) when the page came
    after all, (None, error) when it failed otherwise, (None, None) for the end."""
    for _ in range(END_CONFIRM - 1):
        report.attempts[page] += 1
        try:
            return read(page), None
        except FATAL:
            raise
        except Refused as again:
            if again.code not in END_CODES:
                return None, again
        except CommError as again:
            return None, again
    return None, None


def _wake(pump, log):
    """Several pages lost in a row: the pump's radio window may have ended; wake it once."""
    wake = getattr(pump, "ensure_awake", None)
    if wake is None:
        return False
    print("several pages lost in a row: checking the pump is listening", file=log)
    try:
        wake()
    except FATAL:
        raise
    except DecocareError as exc:
        print("the pump does not answer: %s" % exc, file=log)
        return False
    return True


def _set_aside_old(out_dir, the_plan, report):
    """Files of an earlier run outside this run's range stay, but are named in the manifest."""
    prefix = the_plan.kind + "-page-"
    wanted = {page_file(the_plan.kind, p) for p in the_plan.pages}
    for name in sorted(os.listdir(out_dir)):
        if name.startswith(prefix) and name.endswith(".data") and name not in wanted:
            report.stale.append({"file": name, "why": "outside the range the pump reported now"})


def _keep_previous(out_dir, kind, page, report):
    """A page this run could not read: an older file of it must not pass for this run's."""
    path = os.path.join(out_dir, page_file(kind, page))
    if os.path.exists(path):
        os.replace(path, path + ".previous")
        report.stale.append({"file": os.path.basename(path) + ".previous",
                             "why": "from an earlier run; this run could not read the page"})


def manifest_name(kind):
    return "%s.manifest.json" % kind


def write_manifest(out_dir, report, pump, serial, started):
    """``<kind>.manifest.json``: the pump, the range it reported, each page's outcome."""
    the_plan = report.plan
    pages = []
    for page in the_plan.pages:
        entry = {"page": page, "file": page_file(the_plan.kind, page),
                 "attempts": report.attempts.get(page, 0)}
        if page in report.hashes:
            entry.update(outcome="saved", sha256=report.hashes[page], crc_ok=True)
        elif page in report.failed:
            entry.update(outcome="missing", error=str(report.failed[page]))
        elif report.end is not None and page >= report.end:
            entry.update(outcome="end of history" if page == report.end else "beyond the end")
        else:
            entry.update(outcome="not read")
        pages.append(entry)
    model = getattr(pump, "known_model", None) or getattr(pump, "model", None)
    out = {
        "tool": "decocare %s download" % __version__,
        "kind": the_plan.kind,
        "started": started, "finished": _now(),
        "pump": {"serial": serial or getattr(getattr(pump, "session", None), "serial", None),
                 "model": str(model) if model is not None else None},
        "range": {"reported": the_plan.reported, "pages": the_plan.pages, "bounded": the_plan.bounded},
        "complete": report.complete,
        "saved": len(report.saved),
        "missing": sorted(report.failed),
        "pages": pages,
        "stale": report.stale,
    }
    save(os.path.join(out_dir, manifest_name(the_plan.kind)),
         (json.dumps(out, indent=2, sort_keys=True) + "\n").encode())


def _now():
    return datetime.datetime.now().astimezone().replace(microsecond=0).isoformat()


def verify(out_dir, kind="ReadHistoryData"):
    """Re-check a download folder against its manifest: (ok, [problems])."""
    problems = []
    try:
        with open(os.path.join(out_dir, manifest_name(kind))) as fh:
            manifest = json.load(fh)
    except (OSError, ValueError) as exc:
        return False, ["no readable manifest: %s" % exc]
    for entry in manifest["pages"]:
        path = os.path.join(out_dir, entry["file"])
        if entry["outcome"] != "saved":
            continue
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            problems.append("%s: listed as saved but missing" % entry["file"])
            continue
        if hashlib.sha256(data).hexdigest() != entry["sha256"] or not page_crc_ok(data):
            problems.append("%s: changed since the download" % entry["file"])
    if manifest["missing"]:
        problems.append("missing pages: %s" % " ".join(map(str, manifest["missing"])))
    return not problems, problems



if __name__ == "__main__":      # python -m decocare.download: the command line is decocare/tools/download.py
    from decocare.tools.registry import launch
    launch("decocare.download")

"""The downstream truth on real pages: ../shared/tools/oref0_run.sh runs oref0's own IOB and meal
code (npm oref0 0.7.1) on our decoding of each CareLink pair's pages and on Medtronic's own
decoding (the CareLink export), every 30 minutes, and counts the points that agree.

Three ways of producing our JSON, run concurrently (each is a minute or two of node):
  page-wise   list_history.py once per page, the pages joined newest page first (what openaps'
              iter_pump_hours did): >= 99.5 %, and every remaining disagreement is a record
              oref0 dropped because a NEWER page holds an older record -- a clock set back, or
              the square half of a dual-wave bolus written before its normal half -- which no
              per-page decoder can fix (each page alone is in order)
  whole       list_history.py with all of a pair's pages in one call: 100 %
  emulator    an emulated pump (pty, another process) seeded with the pair's pages and the real
              mm-history.py against it: 100 %

oref0_run.sh installs oref0 into $OREF0_CACHE (default ~/.cache/oref0-check) when it is not
there; the tests skip with the reason when ../shared (or $DECOCARE_SHARED), node, or oref0 and
npm are missing.  This file is also the emulator template's helper:
  python3 tests/test_oref0_run.py emulate MODEL PAGE...   (pages newest first)
"""
import glob
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERIAL = "208850"
AGREEMENT = re.compile(r"^(oref0-[a-z-]+-agreement[a-z-]*): (\d+)/(\d+) points")
ORDER_CAUSE = "order: decoded "


def emulate(model, pages):
    """The emulator template: serve ``pages`` (newest first) from an emulated pump on a pty in
    another process, print what ``bin/mm-history.py`` reads from it; its exit code."""
    with tempfile.TemporaryDirectory() as folder:
        for n, page in enumerate(pages):
            os.symlink(os.path.abspath(page), os.path.join(folder, "ReadHistoryData-page-%d.data" % n))
        log = open(os.path.join(folder, "emulator.log"), "w+")
        emu = subprocess.Popen([sys.executable, "-m", "decocare.emulator", "--timing", "fast", "--link",
                                os.path.join(folder, "carelink"), "--pages", folder, "--model", model,
                                "--serial", SERIAL], stdout=subprocess.PIPE, stderr=log, text=True,
                               cwd=str(ROOT))
        try:
            port = emu.stdout.readline().strip()
            if not port:
                emu.wait(30)
                log.seek(0)
                sys.stderr.write("emulator did not start: %s" % log.read())
                return 2
            done = subprocess.run([sys.executable, str(ROOT / "bin" / "mm-history.py"), "--port", port,
                                   "--serial", SERIAL], cwd=str(ROOT), timeout=120)
            return done.returncode
        finally:
            emu.terminate()
            emu.wait(30)
            log.close()


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "emulate":
        sys.exit("usage: %s emulate MODEL PAGE..." % sys.argv[0])
    sys.exit(emulate(sys.argv[2], sys.argv[3:]))


import pytest  # noqa: E402  (the helper above runs without pytest)

from conftest import shared_path  # noqa: E402

PY = shlex.quote(sys.executable)
VARIANTS = {
    "page-wise": PY + " list_history.py --json --model {model} {page}",
    "whole": PY + " list_history.py --json --model {model} {pages}",
    "emulator": "%s %s emulate {model} {pages}" % (PY, shlex.quote(str(pathlib.Path(__file__).resolve()))),
}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three variants of oref0_run.sh, started together: {variant: Run}."""
    script = shared_path("tools", "oref0_run.sh")
    if not shutil.which("node"):
        pytest.skip("node is not installed: oref0 cannot run")
    cache = pathlib.Path(os.environ.get("OREF0_CACHE") or pathlib.Path.home() / ".cache" / "oref0-check")
    if not (cache / "node_modules" / "oref0" / "package.json").exists() and not shutil.which("npm"):
        pytest.skip("oref0 is not installed in %s and npm is missing" % cache)
    started = {}
    for name, template in VARIANTS.items():
        out = tmp_path_factory.mktemp("oref0-" + name)
        env = dict(os.environ, OREF0_OUT=str(out), OREF0_CACHE=str(cache), PYTHON3=sys.executable,
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        log = open(out / "run.log", "w")
        started[name] = (subprocess.Popen(["bash", str(script), template], cwd=str(ROOT), env=env,
                                          stdout=open(out / "run.out", "w"), stderr=log),
                         out, log, time.monotonic())
    done, deadline = {}, time.monotonic() + 900
    while len(done) < len(started):
        for name, (proc, out, log, t0) in started.items():
            if name in done:
                continue
            if proc.poll() is None and time.monotonic() < deadline:
                continue
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            log.close()
            done[name] = Run(name, proc.returncode, (out / "run.out").read_text(), out,
                             time.monotonic() - t0)
        time.sleep(0.5)
    return done


class Run:
    def __init__(self, name, code, stdout, out, seconds):
        self.name, self.code, self.stdout, self.out, self.seconds = name, code, stdout, out, seconds
        self.agreement = {}
        for line in stdout.splitlines():
            m = AGREEMENT.match(line)
            if m:
                self.agreement[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        self.pairs = [line for line in stdout.splitlines() if " pages-decoded=" in line]

    def check_ran(self):
        log = (self.out / "run.log").read_text()
        if self.code == 2 and "could not be installed" in log:
            pytest.skip("oref0_run.sh could not install oref0 0.7.1: %s" % log.strip().splitlines()[-1])
        assert self.code == 0 and "oref0-iob-agreement" in self.agreement, (self.code, log[-2000:])
        assert self.pairs, self.stdout
        for line in self.pairs:              # every page of every pair decoded
            decoded = re.search(r"pages-decoded=(\d+)/(\d+)", line)
            assert decoded.group(1) == decoded.group(2), line
        print("\n%s (%.0f s): %s" % (self.name, self.seconds, "; ".join(
            l for l in self.stdout.splitlines() if l.startswith("oref0-"))))

    def reports(self):
        return {pathlib.Path(f).stem: json.load(open(f)) for f in glob.glob(str(self.out / "reports" / "*.json"))}

    def pages(self, pair):
        """The pair's decoded pages as the template printed them, newest page first."""
        return [json.load(open(f)) for f in sorted(glob.glob(str(self.out / "decoded" / pair / "*.json")))]


def test_whole_history_agrees_everywhere(runs):
    run = runs["whole"]
    run.check_ran()
    for key in ("oref0-iob-agreement", "oref0-carbs-agreement"):
        agree, points = run.agreement[key]
        assert agree == points > 10000, (key, agree, points)


def test_mm_history_through_the_emulator_agrees_everywhere(runs):
    run = runs["emulator"]
    run.check_ran()
    for key in ("oref0-iob-agreement", "oref0-carbs-agreement"):
        agree, points = run.agreement[key]
        assert agree == points > 10000, (key, agree, points)
    assert run.agreement["oref0-iob-agreement"][1] == runs["whole"].agreement["oref0-iob-agreement"][1]


def test_page_wise_agrees_and_every_disagreement_is_a_page_boundary_inversion(runs):
    run = runs["page-wise"]
    run.check_ran()
    agree, points = run.agreement["oref0-iob-agreement"]
    assert points > 10000 and agree / points >= 0.995, (agree, points)
    assert run.agreement["oref0-iob-agreement-time-sorted"] == (points, points)
    carbs, carb_points = run.agreement["oref0-carbs-agreement"]
    assert carbs / carb_points >= 0.995
    explained = bad = 0
    kinds = {}
    for pair, report in sorted(run.reports().items()):
        stats = report["stats"]
        bad += stats["decoded"]["iob"]["bad"]
        if not stats["decoded"]["iob"]["bad"] and not stats["decoded"]["carbs"]["bad"]:
            continue
        # what oref0_check says: only order (records dropped by oref0), never content
        causes = dict(report["iob_disagreement_causes"], **report["carbs_disagreement_causes"])
        assert causes and all(c.startswith(ORDER_CAUSE) for c in causes), (pair, causes)
        diff = report["inputs_diff"]
        assert not diff["truth_only"] and not diff["decoded_only"] and not diff["value_differs"], pair
        assert stats["decoded_sorted"]["iob"]["bad"] == 0 == stats["decoded_sorted"]["carbs"]["bad"], pair
        # and why each dropped record is listed after an older one: our own check, on the pages
        pages = run.pages(pair)
        dropped = diff["decoded_skipped_by_order"]
        assert dropped, pair
        why = set()
        for item in dropped:
            kind = inversion(pages, item)
            assert kind, "%s: %s is not explained by a page boundary" % (pair, item)
            why.add(kind)
        kinds["%s (%s)" % (pair, " + ".join(sorted(why)))] = stats["decoded"]["iob"]["bad"]
        explained += stats["decoded"]["iob"]["bad"]
    assert explained == bad == points - agree
    print("page-wise: %d disagreeing points, all records dropped because a newer page holds an older "
          "record: %s" % (bad, ", ".join("%s %d" % item for item in sorted(kinds.items()))))


def inversion(pages, item):
    """Why the record ``item`` ("Bolus 2013-07-09T20:42:48 1.5") of a pair's pages is listed
    after an older record when the pages are joined: a NEWER page (listed before it) holds a
    record older than it, because
      "clock set back"  the clock was set back (NewTimeSet earlier than its ChangeTime) to a
                        time before the record, on its page or a newer one; or
      "dual-wave"       it is the square half of a dual-wave bolus, whose normal half -- written
                        after it, with an earlier time -- is on a newer page.
    None when neither holds."""
    kind, when = item.split()[:2]
    found = [(p, r) for p, recs in enumerate(pages) for r in recs
             if r.get("_type") == kind and r.get("timestamp") == when]
    if not found:
        return None
    page, rec = found[0]
    older = [(q, r) for q in range(page) for r in pages[q] if r.get("timestamp") and r["timestamp"] < when]
    if not older:
        return None                 # not a page-boundary inversion
    if kind == "Bolus" and rec.get("type") == "square" and any(
            r.get("_type") == "Bolus" and r.get("type") == "normal" and r["timestamp"] < when
            and _minutes(r["timestamp"], when) < 10 for _, r in older):
        return "dual-wave"
    for q in range(page + 1):
        changes = [r for r in pages[q] if r.get("_type") in ("ChangeTime", "NewTimeSet")]
        for new, old in zip(changes, changes[1:]):
            if new["_type"] == "NewTimeSet" and old["_type"] == "ChangeTime" and \
                    new["timestamp"] < when <= old["timestamp"]:
                return "clock set back"
    return None


def _minutes(a, b):
    import datetime
    return (datetime.datetime.fromisoformat(b) - datetime.datetime.fromisoformat(a)).total_seconds() / 60

"""The fault soak (benchmarks/soak.py) in small: every fault kind of the emulator, a few seeded
runs each of ``python -m decocare.download`` (history, then glucose) against the emulated 523
#736868 serving its real pages -- not one run may exit 0 with a page missing or different, nor
save a page with other bytes than the pump holds, nor hang.  ``python benchmarks/soak.py``
is the full run (its table is in the README)."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "benchmarks"))
import soak  # noqa: E402

SEEDS = 2
# per kind a setting likely to cut a download short (stall=0.2 would take ~30 s a run: each
# stall waits out the stalled transfer; the full soak has it)
HARSH = {"timeout": "timeout=0.3", "drop_args": "drop_args=0.5", "lost_ack": "lost_ack=0.5",
         "nak": "nak=0.2", "corrupt": "corrupt=0.05", "stall": "stall=0.05", "late_usb": "late_usb=0.01",
         "asleep": "asleep,nak=0.05", "out_of_range": "out_of_range"}


def test_every_fault_kind_has_soak_settings():
    assert set(soak.kinds()) == set(soak.SETTINGS) == set(HARSH)
    for kind, spec in HARSH.items():
        assert spec in soak.SETTINGS[kind]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("soak-pages")
    soak.pages_folder(folder)
    return folder


def test_no_fault_kind_ends_a_download_silently_short(pages, monkeypatch):
    monkeypatch.setattr(soak, "SETTINGS", {kind: [spec] for kind, spec in HARSH.items()})
    table, details = soak.soak(SEEDS, workers=9, pages=pages, first_seed=100)
    per_kind = soak.by_kind(table)
    assert set(per_kind) == set(HARSH)
    bad = {kind: row for kind, row in per_kind.items()
           if row["silently short"] or row["wrong page"] or row["hung"]}
    assert not bad, "%s\n%s" % (bad, "\n".join(details))
    for kind, row in per_kind.items():
        assert sum(row.values()) == 2 * SEEDS, (kind, row)
    # the soak is not vacuous: most kinds still complete, and out_of_range never does
    assert per_kind["out_of_range"]["complete"] == 0
    assert sum(row["complete"] for row in per_kind.values()) >= len(HARSH)

"""The one freshness test of every generated page (decocare/tools/docs.py): each table-derived
doc -- commands, records, emulator faults, stick ops, exit codes (also README's table) -- is what
its table gives now.  Regenerate with ``python -m decocare.tools.docs``."""
from decocare.errors import EXIT_CODES, NAK_CODES
from decocare.emulator.faults import FLAGS, POINTS
from decocare.frames import STICK_OPS
from decocare.tools import docs


def test_every_generated_page_is_current():
    assert docs.stale() == [], "regenerate: python -m decocare.tools.docs"


def test_the_pages_hold_every_row_of_their_table():
    pages = docs.expected()
    for name in list(POINTS) + list(FLAGS):
        assert "`%s" % name in pages["docs/faults.md"]
    for op in STICK_OPS:
        assert "| %s | 0x%02X |" % (op.name, op.code) in pages["docs/stick-ops.md"]
    for code, _, meaning in EXIT_CODES:
        assert "| %d | %s |" % (code, meaning) in pages["README.md"]
    for code in NAK_CODES:
        assert "| 0x%02X |" % code in pages["docs/commands.md"]


def test_check_mode_names_a_stale_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(docs, "expected", lambda: {"docs/faults.md": "something else\n"})
    assert docs.main(["--check"]) == 1 and "docs/faults.md" in capsys.readouterr().err

"""docs/architecture.md's state diagrams are the transition table, drawn."""

import os
from pathlib import Path

import pytest

from api.lifecycle import diagram
from api.lifecycle.table import TRANSITIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_the_doc_shows_the_table() -> None:
    doc = DOC.read_text(encoding="utf-8")
    if os.environ.get("SMARTVEND_WRITE_DOCS") == "1":
        DOC.write_text(diagram.render(doc), encoding="utf-8")
        doc = DOC.read_text(encoding="utf-8")
    assert diagram.render(doc) == doc, "run with SMARTVEND_WRITE_DOCS=1 to redraw the diagrams"


def test_every_move_is_an_arrow() -> None:
    drawn = diagram.section()
    for t in TRANSITIONS:
        assert f"{t.source or '[*]'} --> {t.target}: {t.event}" in drawn


def test_render_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        diagram.render("# no markers here\n")
    assert diagram.render(f"a\n{diagram.BEGIN}\nold\n{diagram.END}\nb\n").endswith(
        f"{diagram.END}\nb\n"
    )

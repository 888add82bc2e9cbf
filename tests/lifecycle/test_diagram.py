"""docs/architecture.md's state diagrams are the transition table, drawn."""

import pytest

from api.lifecycle import diagram
from api.lifecycle.table import TRANSITIONS


def test_the_doc_shows_the_table() -> None:
    doc = diagram.DOC.read_text(encoding="utf-8")
    assert diagram.render(doc) == doc, "run: python -m api.lifecycle.diagram"


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

"""docs/architecture.md's state diagrams, drawn from the transition table (text in, text out).

``tests/lifecycle/test_diagram.py`` fails when the doc and the table differ,
and rewrites the part between the markers when run with SMARTVEND_WRITE_DOCS=1.
"""

from api.lifecycle.table import KINDS, TRANSITIONS, Status

BEGIN = "<!-- lifecycle-diagram:begin (generated from api/lifecycle/table.py) -->"
END = "<!-- lifecycle-diagram:end -->"
TITLES = {
    "OrderStatus": "An order",
    "CommandStatus": "A dispense command",
    "RefundStatus": "A refund",
    "SessionStatus": "A lock (vend session)",
}


def mermaid(kind: type[Status]) -> str:
    """One kind's state diagram, arrows in table order, final states marked."""
    moves = [t for t in TRANSITIONS if type(t.target) is kind]
    sources = {str(t.source) for t in moves if t.source is not None}
    lines = ["```mermaid", "stateDiagram-v2"]
    for t in moves:
        label = f"{t.event} ({t.why})" if t.why else str(t.event)
        lines.append(f"  {t.source or '[*]'} --> {t.target}: {label}")
    for state in kind:
        if state in sources:
            continue
        lines.append(f"  {state} --> [*]")
    lines.append("```")
    return "\n".join(lines)


def section() -> str:
    parts = [BEGIN]
    for kind in KINDS:
        parts += ["", f"{TITLES[kind.__name__]}:", "", mermaid(kind)]
    parts += ["", END]
    return "\n".join(parts)


def render(doc: str) -> str:
    """``doc`` with the generated section replaced; ValueError when the markers are missing."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        raise ValueError("the lifecycle-diagram markers are missing")
    return doc[:start] + section() + doc[end + len(END) :]

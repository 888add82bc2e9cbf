"""Statuses are decided by the lifecycle and written by its writer, nowhere else.

An AST walk over the server's code (``api``, ``web``, ``schema``) fails on:
- an assignment to a ``.status`` attribute, a ``status=`` given to an order,
  command, refund or lock row or to an UPDATE's ``.values()``;
- a status word of the vocabulary (``schema.statuses``) written as a literal
  where a status is compared, listed or filtered.
The lifecycle (``api/lifecycle/``), its writer (``api/services/vend_writer.py``)
and the vocabulary itself are where these belong. The payment gateways speak
the gateway's own words (a Razorpay order is ``paid``), not ours; a firmware
rollout's statuses are decided in ``api/firmware/plan.py`` and written by
``api/services/rollouts.py`` alone.
"""

import ast
from pathlib import Path

from schema import statuses

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("api", "web", "schema")
ALLOWED = (
    "api/lifecycle/",
    "api/services/vend_writer.py",
    "schema/statuses.py",
    "api/payments/",  # the gateway's vocabulary, not the vend's
    # A firmware rollout is a record of its own (contract section 6), decided by its pure
    # rules and written by its one service; its words are not the vend's.
    "api/firmware/plan.py",
    "api/services/rollouts.py",
    # So is an outgoing webhook delivery (contract section 8), sent and written by its one
    # service.
    "api/services/webhooks_out.py",
)
ROWS = {"Order", "Command", "Refund", "VendSession"}
WORDS = set(statuses.ORDER + statuses.COMMAND + statuses.REFUND + statuses.SESSION)


def _files() -> list[Path]:
    found = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(ALLOWED):
                found.append(path)
    return found


def _names_status(node: ast.AST) -> bool:
    """``status``, ``x.status``, ``order_status``, ``Order.status``..."""
    if isinstance(node, ast.Attribute):
        return node.attr.endswith("status")
    if isinstance(node, ast.Name):
        return node.id.endswith("status")
    return False


def _word(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in WORDS


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _typed(tree: ast.AST) -> set[int]:
    """Tuples inside ``Literal[...]``: mypy's spelling, checked against the vocabulary
    by tests/lifecycle/test_vocabulary.py."""
    return {
        id(node.slice)
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Literal"
    }


def offences(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    typed = _typed(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "status":
                    found.append((node.lineno, "assigns .status"))
        elif isinstance(node, ast.Call):
            callee = _callee(node)
            if callee in ROWS or callee == "values":
                for keyword in node.keywords:
                    if keyword.arg == "status":
                        found.append((node.lineno, f"status= in {callee}()"))
            if callee in ("in_", "not_in") and any(
                _word(a) or (isinstance(a, ast.Tuple | ast.List) and any(map(_word, a.elts)))
                for a in node.args
            ):
                found.append((node.lineno, f"status literal in {callee}()"))
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(map(_names_status, sides)) and any(
                _word(side)
                or (isinstance(side, ast.Tuple | ast.List | ast.Set) and any(map(_word, side.elts)))
                for side in sides
            ):
                found.append((node.lineno, "compares a status with a literal"))
        elif (
            isinstance(node, ast.Tuple | ast.List | ast.Set)
            and id(node) not in typed
            and len(node.elts) >= 2
            and all(map(_word, node.elts))
        ):
            found.append((node.lineno, "a list of status literals"))
    return found


def test_no_status_is_written_or_spelled_outside_the_lifecycle_and_its_writer() -> None:
    bad = []
    for path in _files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(ROOT).as_posix()
        bad += [f"{rel}:{line}: {what}" for line, what in offences(tree)]
    assert bad == [], "\n".join(bad)


def test_the_walk_sees_each_kind_of_offence() -> None:
    code = """
order.status = "paid"
update(Order).values(status=OrderStatus.PAID)
Command(id="c", status="pending")
select(Order).where(Order.status.in_(("paid", "dispensing")))
if command.status == "running": pass
FINAL = ("succeeded", "failed")
"""
    assert sorted(offences(ast.parse(code))) == [
        (2, "assigns .status"),
        (3, "status= in values()"),
        (4, "status= in Command()"),
        (5, "a list of status literals"),
        (5, "status literal in in_()"),
        (6, "compares a status with a literal"),
        (7, "a list of status literals"),
    ]
    assert offences(ast.parse('x: Literal["paid", "expired"]')) == []

"""Every spelling of a status comes from schema.statuses."""

import ast
import json
from pathlib import Path

from api.http.openapi import openapi_document
from api.lifecycle.states import CommandStatus, OrderStatus, RefundStatus, SessionStatus
from schema import models, statuses, wire

ROOT = Path(__file__).resolve().parents[2]


def test_the_lifecycle_and_the_database_spell_the_vocabulary() -> None:
    assert tuple(OrderStatus) == statuses.ORDER == models.ORDER_STATES
    assert tuple(CommandStatus) == statuses.COMMAND == models.COMMAND_STATES
    assert tuple(RefundStatus) == statuses.REFUND == models.REFUND_STATES
    assert tuple(SessionStatus) == statuses.SESSION == models.SESSION_STATES


def test_the_wire_and_the_documents_take_the_vocabulary() -> None:
    fields = {name: spec for name, spec, _required in wire.SPECS["results"][0]}
    assert fields["status"] == ("enum", False, statuses.RESULT)
    document = json.dumps(openapi_document())
    assert json.dumps({"enum": list(statuses.ORDER)}) in document
    assert json.dumps({"enum": list(statuses.REFUND)}) in document


def test_the_typed_result_message_spells_the_result_statuses() -> None:
    tree = ast.parse((ROOT / "schema" / "messages.py").read_text(encoding="utf-8"))
    typed = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == "ResultsMsg"
    )
    field = next(
        n for n in typed.body if isinstance(n, ast.AnnAssign) and ast.unparse(n.target) == "status"
    )
    assert isinstance(field.annotation, ast.Subscript)
    values = ast.literal_eval(field.annotation.slice)
    assert tuple(values) == statuses.RESULT

"""The server's TypedDicts of the payloads name the same fields as the field tables.

They live in ``schema.messages``'s TYPE_CHECKING block (MicroPython never sees
them), so they are read here from the source.
"""

import ast
from pathlib import Path

from schema import messages

SOURCE = Path(messages.__file__).read_text(encoding="utf-8")


def typed_dicts() -> dict[str, dict[str, bool]]:
    """{class name: {field: required}} of the TypedDicts in the TYPE_CHECKING block."""
    found: dict[str, dict[str, bool]] = {}
    for node in ast.walk(ast.parse(SOURCE)):
        if isinstance(node, ast.ClassDef) and any(
            isinstance(b, ast.Name) and b.id == "TypedDict" for b in node.bases
        ):
            fields: dict[str, bool] = {}
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    optional = "NotRequired[" in ast.unparse(item.annotation)
                    fields[item.target.id] = not optional
            found[node.name] = fields
    return found


def class_name(kind: str) -> str:
    return "".join(part.title() for part in kind.split("_")) + "Msg"


def test_every_kind_with_fixed_fields_has_its_typed_dict() -> None:
    shapes = typed_dicts()
    for kind, (fields, rules, extra) in messages.SPECS.items():
        if extra is not None:
            assert f"{class_name(kind)} = dict[" in SOURCE  # telemetry: any numeric keys
            continue
        declared = {name: required for name, _spec, required in fields}
        conditional = {n for _f, _v, _e, names in rules for n in names}
        typed = shapes[class_name(kind)]
        assert set(typed) == set(declared), kind
        for name, required in declared.items():
            if name not in conditional:
                assert typed[name] == required, (kind, name)


def test_nested_objects_are_typed_too() -> None:
    shapes = typed_dicts()
    assert set(shapes["PriceMsg"]) == {"amount", "currency"}
    assert set(shapes["DisplayMsg"]) == {"code", "expires_at"}
    assert set(shapes["LockMsg"]) == {"session", "expires_at"}

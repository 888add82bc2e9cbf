"""JSON Schemas generated from the field tables of :mod:`schema.wire` and
:mod:`schema.messages`.

The schemas use only keywords that mean the same in JSON Schema draft 2020-12
and draft-07 (the AsyncAPI 3 default schema format), so one document serves both.
Server side only: the machine never needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schema.wire import Field, Kind, Rule, Spec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_TYPES = {
    "int": "integer",
    "str": "string",
    "enum": "string",
    "bool": "boolean",
    "num": "number",
    "obj": "object",
    "list": "array",
}


def _spec(spec: Spec, patterns: dict[str, str]) -> dict[str, Any]:
    t = spec[0]
    out: dict[str, Any] = {"type": _TYPES[t]}
    if t == "int":
        out["minimum"] = spec[2]
        out["maximum"] = spec[3]
    elif t == "str":
        lo, hi, cls = spec[2], spec[3], spec[4]
        if cls is None:
            out["minLength"] = lo
            out["maxLength"] = hi
        else:
            count = str(lo) if lo == hi else str(lo) + "," + str(hi)
            out["pattern"] = "^[" + patterns[cls] + "]{" + count + "}$"
    elif t == "enum":
        out["enum"] = list(spec[2])
    elif t == "obj":
        out.update(_object(spec[2], (), patterns))
    elif t == "list":
        out["items"] = _spec(spec[4], patterns)
        out["minItems"] = spec[2]
        out["maxItems"] = spec[3]
    if spec[1]:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"].append(None)
    return out


def _rule(rule: Rule) -> dict[str, Any]:
    field, value, effect, targets = rule
    test = {"not": {"type": "null"}} if value is None else {"const": value}
    if effect == "require":
        then: dict[str, Any] = {"required": list(targets)}
    else:
        then = {"properties": {name: {"type": "null"} for name in targets}}
    return {"if": {"properties": {field: test}, "required": [field]}, "then": then}


def _object(
    fields: tuple[Field, ...], rules: tuple[Rule, ...], patterns: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "properties": {name: _spec(spec, patterns) for name, spec, _ in fields},
        "required": [name for name, _, required in fields if required],
    }
    if rules:
        out["allOf"] = [_rule(rule) for rule in rules]
    return out


def build_schemas(
    kinds: tuple[str, ...],
    specs: dict[str, Kind],
    patterns: dict[str, str],
    max_keys: int,
    max_key: int,
) -> dict[str, dict[str, Any]]:
    """One JSON Schema per message kind, in ``kinds`` order."""
    schemas = {}
    for kind in kinds:
        fields, rules, extra = specs[kind]
        schema: dict[str, Any] = {"title": kind, "type": "object"}
        schema.update(_object(fields, rules, patterns))
        if extra is not None:
            schema["additionalProperties"] = _spec(extra, patterns)
            schema["propertyNames"] = {"minLength": 1, "maxLength": max_key}
            schema["maxProperties"] = max_keys
        schemas[kind] = schema
    return schemas

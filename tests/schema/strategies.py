"""Hypothesis strategies for wire payloads, derived from the public JSON Schemas."""

import json
from typing import Any

import jsonschema_rs
from hypothesis import strategies as st

from schema import messages

Json = Any


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema["type"]
    return kind if isinstance(kind, list) else [kind]


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Json]:
    """Values valid for the subset of JSON Schema that ``messages.SCHEMAS`` uses."""
    options: list[st.SearchStrategy[Json]] = []
    for kind in _types(schema):
        if kind == "null":
            options.append(st.none())
        elif kind == "integer":
            options.append(st.integers(schema["minimum"], schema["maximum"]))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "number":
            options.append(
                st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
            )
        elif kind == "string" and "enum" in schema:
            options.append(st.sampled_from([v for v in schema["enum"] if v is not None]))
        elif kind == "string" and "\\uffff" in schema.get("pattern", ""):
            options.append(_text(schema["pattern"]))
        elif kind == "string" and "pattern" in schema:
            # No lone surrogates: they are not text (no UTF-8 encodes them).
            text = st.characters(exclude_categories=["Cs"])
            options.append(st.from_regex(schema["pattern"], fullmatch=True, alphabet=text))
        elif kind == "string":
            options.append(st.text(min_size=schema["minLength"], max_size=schema["maxLength"]))
        elif kind == "object":
            options.append(_object(schema))
        elif kind == "array":
            # A few items: the longest lists are checked apart (test_messages_rules).
            items = from_schema(schema["items"])
            most = min(schema["maxItems"], schema["minItems"] + 3)
            options.append(st.lists(items, min_size=schema["minItems"], max_size=most))
        else:  # pragma: no cover - a keyword this helper does not know yet
            raise AssertionError(kind)
    return st.one_of(options)


def _text(pattern: str) -> st.SearchStrategy[str]:
    """The wire's "text" class (the BMP without control characters): from_regex is
    slow on so wide a class, so draw such text directly."""
    lo, hi = pattern[pattern.rindex("{") + 1 : pattern.rindex("}")].split(",")
    alphabet = st.characters(exclude_categories=["Cs", "Cc"], max_codepoint=0xFFFF)
    return st.text(alphabet, min_size=int(lo), max_size=int(hi))


def _merge(parts: tuple[dict[str, Json], dict[str, Json]]) -> dict[str, Json]:
    return {**parts[1], **parts[0]}


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Json]]:
    props = schema["properties"]
    required = set(schema["required"])
    base = st.fixed_dictionaries(
        {k: from_schema(v) for k, v in props.items() if k in required},
        optional={k: from_schema(v) for k, v in props.items() if k not in required},
    )
    extra_schema = schema.get("additionalProperties")
    if isinstance(extra_schema, dict):
        names = schema["propertyNames"]
        extra = st.dictionaries(
            st.text(min_size=names["minLength"], max_size=names["maxLength"]).filter(
                lambda k: k not in props
            ),
            from_schema(extra_schema),
            max_size=schema["maxProperties"] - len(props),
        )
    else:
        extra = st.just({})
    combined = st.tuples(base, extra).map(_merge)
    if "allOf" in schema:
        validator = jsonschema_rs.Draft202012Validator(schema)
        combined = combined.filter(validator.is_valid)
    return combined


def valid(kind: str) -> st.SearchStrategy[dict[str, Json]]:
    """Valid ``kind`` payloads as dicts (small enough to encode)."""
    return from_schema(messages.SCHEMAS[kind]).filter(
        lambda x: len(json.dumps(x, separators=(",", ":"))) <= messages.MAX_PAYLOAD
    )


# Any JSON value, except integral floats: JSON Schema counts 1.0 as an integer while
# the codec accepts only real integers (the JSON text ``1``).
json_values: st.SearchStrategy[Json] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.sampled_from([-1, 0, 1, messages.MAX_INT, messages.MAX_INT + 1])
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
    | st.text(max_size=40)
    | st.sampled_from(["", "online", "idle", "123456", "INR", "a" * 129, "x" * 513]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

"""Property tests of the payload codec: round trips, fuzzing, and schema agreement."""

import json
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema import messages
from schema.errors import SchemaError
from tests.schema.strategies import json_values, valid

PER_KIND = settings(max_examples=60, suppress_health_check=[HealthCheck.filter_too_much])
FUZZ = settings(max_examples=400)


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("kind", messages.KINDS)
@PER_KIND
@given(data=st.data())
def test_round_trip(kind: str, data: st.DataObject) -> None:
    obj = data.draw(valid(kind))
    payload = messages.encode(kind, obj)
    assert isinstance(payload, bytes)
    decoded = messages.decode(kind, payload)
    assert decoded == obj
    assert payload == _compact(json.loads(payload))
    assert len(payload) <= messages.MAX_PAYLOAD
    assert jsonschema_rs.Draft202012Validator(messages.SCHEMAS[kind]).is_valid(decoded)
    assert jsonschema_rs.Draft7Validator(messages.SCHEMAS[kind]).is_valid(decoded)


def _mutate(obj: dict[str, Any], path: list[Any], value: Any, delete: bool) -> dict[str, Any]:
    out = json.loads(json.dumps(obj))
    target = out
    for key in path[:-1]:
        target = target[key]
    if delete and isinstance(target, list):
        del target[path[-1]]
    elif delete:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return out  # type: ignore[no-any-return]


def _paths(obj: dict[str, Any]) -> list[list[Any]]:
    """Every field, nested object field, list item and field of a list item
    (slots, lines) of ``obj``."""
    paths: list[list[Any]] = []
    for key, value in obj.items():
        paths.append([key])
        if isinstance(value, dict):
            paths.extend([key, sub] for sub in value)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                paths.append([key, index])
                if isinstance(item, dict):
                    paths.extend([key, index, sub] for sub in item)
    return paths


@pytest.mark.parametrize("kind", messages.KINDS)
@settings(max_examples=100, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_decode_accepts_exactly_what_the_schema_accepts(kind: str, data: st.DataObject) -> None:
    """Break one field of a valid payload: the codec and the JSON Schema must agree."""
    obj = data.draw(valid(kind))
    path = data.draw(st.sampled_from([*_paths(obj), ["zz_new"]]))
    delete = data.draw(st.booleans())
    mutated = _mutate(obj, path, data.draw(json_values), delete)
    payload = _compact(mutated)
    if len(payload) > messages.MAX_PAYLOAD:
        return
    schema = messages.SCHEMAS[kind]
    expected = jsonschema_rs.Draft202012Validator(schema).is_valid(mutated)
    assert jsonschema_rs.Draft7Validator(schema).is_valid(mutated) == expected
    try:
        messages.decode(kind, payload)
    except SchemaError:
        accepted = False
    else:
        accepted = True
    assert accepted == expected, (mutated, accepted)


@FUZZ
@given(kind=st.sampled_from(messages.KINDS), payload=st.binary(max_size=messages.MAX_PAYLOAD + 8))
def test_random_bytes_only_raise_schema_error(kind: str, payload: bytes) -> None:
    try:
        result = messages.decode(kind, payload)
    except SchemaError:
        return
    assert isinstance(result, dict)


@FUZZ
@given(kind=st.sampled_from(messages.KINDS), value=json_values)
def test_random_json_only_raises_schema_error(kind: str, value: Any) -> None:
    try:
        result = messages.decode(kind, _compact(value))
    except SchemaError:
        return
    assert isinstance(result, dict)
    assert messages.decode(kind, messages.encode(kind, result)) == result


@FUZZ
@given(
    kind=st.sampled_from(messages.KINDS),
    value=json_values
    | st.dictionaries(st.integers() | st.text(max_size=4), json_values | st.integers()),
)
def test_encode_of_anything_only_raises_schema_error(kind: str, value: Any) -> None:
    try:
        payload = messages.encode(kind, value)
    except SchemaError:
        return
    assert messages.decode(kind, payload) == value


@given(kind=st.text(max_size=20).filter(lambda k: k not in messages.KINDS), payload=st.binary())
def test_unknown_kinds_raise_schema_error(kind: str, payload: bytes) -> None:
    with pytest.raises(SchemaError):
        messages.decode(kind, payload)
    with pytest.raises(SchemaError):
        messages.encode(kind, {})

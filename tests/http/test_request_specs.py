"""One spec per route drives both the route's parsing and the OpenAPI request body."""

from typing import Any

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from api.errors import InvalidRequest
from api.http import specs
from api.http.openapi import api_routes, openapi_document
from api.http.route_table import ApiRoute
from api.http.specs import Array, Boolean, Flag, Integer, Object, Spec, Text, Texts

# Every route declared with a JSON body spec: (method, path) -> its spec.
ROUTES = sorted(
    ((r.method, r.document_path), r.spec)
    for r in api_routes()
    if isinstance(r, ApiRoute) and r.spec is not None
)


def _body_schema(method: str, path: str) -> dict[str, Any]:
    op = openapi_document()["paths"][path][method]
    schema: dict[str, Any] = op["requestBody"]["content"]["application/json"]["schema"]
    return schema


@pytest.mark.parametrize(("route", "spec"), ROUTES, ids=[f"{m} {p}" for (m, p), _ in ROUTES])
def test_openapi_request_body_is_the_spec(route: tuple[str, str], spec: Spec) -> None:
    schema = _body_schema(*route)
    assert schema == specs.schema(spec)
    _check_fields(schema, spec)


def _check_fields(schema: dict[str, Any], spec: Spec) -> None:
    assert list(schema["properties"]) == [f.name for f in spec]
    assert schema["required"] == [f.name for f in spec if f.required]
    for f in spec:
        prop = schema["properties"][f.name]
        if isinstance(f, Object):
            _check_fields(prop, f.fields)
        elif isinstance(f, Array):
            assert prop["type"] == ("array" if f.required else ["array", "null"])
            assert prop["maxItems"] == f.max_items
            if not isinstance(f.fields, Text):
                _check_fields(prop["items"], f.fields)
        elif isinstance(f, Boolean):
            assert prop["type"] == "boolean" and prop["default"] is f.default
        elif isinstance(f, Flag):
            assert prop == {
                "type": "boolean",
                **({"description": f.description} if f.description else {}),
            }
        elif isinstance(f, Texts):
            assert prop["type"] == ("array" if f.required else ["array", "null"])
            assert prop["maxItems"] == f.max_items
            assert prop["items"]["maxLength"] == f.max_len
        elif isinstance(f, Integer):
            assert prop["type"] == "integer"
            assert prop["minimum"] == f.rule.get("minimum", f.low)
            named = next((g for g in spec if g.name == f.high), None)
            bound = f.high if isinstance(f.high, int) else getattr(named, "high", None)
            assert prop["maximum"] == bound
        elif "enum" in prop:
            assert prop["enum"] == list(f.choices or f.rule["enum"])
        else:
            assert (prop["minLength"], prop["maxLength"]) == (f.min_len, f.max_len)
            assert prop["type"] == ("string" if f.required else ["string", "null"])


def test_every_json_body_in_the_document_has_a_spec() -> None:
    documented = {
        (method, path)
        for path, ops in openapi_document()["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    }
    # Raw bodies: the signed gateway webhook, release uploads, rollouts and tags (lists and
    # files the specs cannot state, checked by their services).
    raw = {
        ("post", "/api/webhooks/razorpay"),
        ("post", "/api/firmware"),
        ("post", "/api/rollouts"),
        ("put", "/api/machine/{mid}/tags"),
    }
    assert documented - raw == {route for route, _spec in ROUTES}


def test_every_api_route_is_declared_with_its_operation() -> None:
    """A route of the JSON API is an ``ApiRoute``: nothing reaches the app undocumented."""
    assert all(isinstance(r, ApiRoute) for r in api_routes())
    operations = sum(len(ops) for ops in openapi_document()["paths"].values())
    assert operations == len(api_routes())


async def test_a_route_reads_only_the_body_it_declares() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from api.http.route_table import route

    async def echo(request: Request) -> Response:
        return JSONResponse(await specs.read(request))

    async def other(request: Request) -> Response:
        return JSONResponse(await specs.read(request, specs.LOGIN))

    app = Starlette(
        routes=[
            route("POST", "/echo", echo, summary="echo", body=specs.UNLOCK),
            route("POST", "/other", other, summary="other", body=specs.UNLOCK),
        ]
    )
    body = {"client_id": "c" * 8, "session_id": "s1"}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/echo", json=body)).json() == body
        assert (await client.post("/other", json=body)).status_code == 500


def _value(schema: dict[str, Any], required: bool) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema["type"]
    if kind == "boolean":
        return st.booleans() if required else st.none() | st.booleans()
    if kind in ("array", ["array", "null"]):
        low = max(1, schema.get("minItems", 0)) if "type" in schema["items"] else 0
        items = st.lists(
            _value(schema["items"], True), min_size=low, max_size=min(3, schema["maxItems"])
        )
        return items if kind == "array" else st.none() | items
    if kind == "object":
        return _object(schema)
    if kind == "integer":
        return st.integers(schema["minimum"], schema["maximum"])
    if "pattern" in schema:
        text = st.from_regex(schema["pattern"], fullmatch=True)
    else:
        text = st.text(min_size=schema["minLength"], max_size=schema["maxLength"])
    return text if required else st.none() | text


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    required = set(schema["required"])
    parts = {
        name: _value(prop, name in required).map(lambda v: [v])
        if name in required
        else st.just([]) | _value(prop, False).map(lambda v: [v])
        for name, prop in schema["properties"].items()
    }
    return st.fixed_dictionaries(parts).map(lambda d: {k: v[0] for k, v in d.items() if v})


def _within_named_bounds(spec: Spec, body: dict[str, Any]) -> bool:
    """A bound that names another field (stock <= capacity) is beyond JSON Schema."""
    for f in spec:
        if isinstance(f, Array) and not isinstance(f.fields, Text):
            items = body.get(f.name) or []
            if not all(_within_named_bounds(f.fields, item) for item in items):
                return False
        if isinstance(f, Integer) and isinstance(f.high, str):
            value = body.get(f.name, f.default)
            if value is not None and value > body[f.high]:
                return False
    return True


@st.composite
def valid_bodies(draw: st.DrawFn) -> tuple[Spec, dict[str, Any]]:
    route, spec = draw(st.sampled_from(ROUTES))
    body = draw(_object(_body_schema(*route)))
    assume(_within_named_bounds(spec, body))
    return spec, body


@given(valid_bodies())
def test_a_body_valid_per_the_schema_parses(case: tuple[Spec, dict[str, Any]]) -> None:
    spec, body = case
    parsed = specs.parse(spec, body)
    for f in spec:
        if isinstance(f, Object | Array) or f.name not in body or body[f.name] is None:
            continue
        assert parsed[f.name] == body[f.name]


def _too_far(f: Text | Integer | Flag | Texts, body: dict[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(f, Flag):
        return st.sampled_from(["yes", 1, [], {}])
    if isinstance(f, Texts):
        return st.sampled_from(["x", [""], [7], ["x" * (f.max_len + 1)], [""] * (f.max_items + 1)])
    if isinstance(f, Integer):
        high = f.high if isinstance(f.high, int) else body[f.high]
        return st.sampled_from([f.low - 1, high + 1, "1", 1.5, True])
    wrong = [f.max_len + 1] + ([f.min_len - 1] if f.min_len > 0 else [])
    return st.sampled_from(wrong).map(lambda n: "x" * n) | st.sampled_from([7, [], {}])


@st.composite
def broken_bodies(draw: st.DrawFn) -> tuple[Spec, dict[str, Any], str]:
    spec, body = draw(valid_bodies())
    flat = [f for f in spec if isinstance(f, Text | Integer | Flag | Texts)]
    assume(flat)  # objects, arrays of objects and defaults are covered through their own specs
    f = draw(st.sampled_from(flat))
    return spec, {**body, f.name: draw(_too_far(f, body))}, f.name


@given(broken_bodies())
def test_a_body_past_a_bound_is_refused(case: tuple[Spec, dict[str, Any], str]) -> None:
    spec, body, name = case
    with pytest.raises(InvalidRequest) as refused:
        specs.parse(spec, body)
    assert refused.value.code == "invalid_request"
    assert str(refused.value).startswith(f"{name} must be ")


@pytest.mark.parametrize(
    ("spec", "body", "message"),
    [
        (
            specs.CREATE_ORDER,
            {"session_id": "s", "client_id": "c", "quantity": "2"},
            "quantity must be an integer",
        ),
        (
            specs.CREATE_ORDER,
            {"session_id": "s", "client_id": "c", "items": []},
            "items must be a list of 1 to 60 items",
        ),
        (
            specs.CREATE_ORDER,
            {"session_id": "s", "client_id": "c", "items": [{"slot": "A1", "quantity": 0}]},
            "items: quantity must be 1 to 1000",
        ),
        (
            specs.CREATE_ORDER,
            {"session_id": "s", "client_id": "c", "quantity": 0},
            "quantity must be 1 to 1000",
        ),
        (specs.TEST_CHECKOUT, {"outcome": "maybe"}, "outcome must be pay or fail"),
        (specs.TEST_CHECKOUT, {"outcome": "pay"}, "gateway_order_id must be a string"),
        (specs.LOCK_BY_CODE, {"code": "", "client_id": "c"}, "code must be 1 to 16 characters"),
        (
            specs.REGISTER,
            {"capacity": 5, "machine_id": "m", "name": "n", "price": 3},
            "amount must be an integer",
        ),
        (
            specs.REGISTER,
            {
                "capacity": 5,
                "machine_id": "m",
                "name": "n",
                "price": {"amount": 9, "currency": "INR"},
                "stock": 6,
            },
            "stock must be 0 to 5",
        ),
        (specs.REGISTER, {"machine_id": "m"}, "capacity must be an integer"),
    ],
)
def test_messages_are_the_routes_own(spec: Spec, body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=f"^{message}$"):
        specs.parse(spec, body)


def test_absent_optional_fields_read_as_their_defaults() -> None:
    assert specs.parse(specs.REPORT_ERROR, {"code": "jam"}) == {"code": "jam", "detail": ""}
    assert specs.parse(specs.FEEDBACK, {"client_id": "c", "rating": "up", "comment": None}) == {
        "client_id": "c",
        "rating": "up",
        "comment": None,
    }
    parsed = specs.parse(
        specs.REGISTER,
        {
            "capacity": 4,
            "machine_id": "m",
            "name": "n",
            "price": {"amount": 500, "currency": "INR"},
        },
    )
    assert (parsed["stock"], parsed["location"], parsed["price"]["amount"]) == (0, None, 500)


OPEN_ROUTES = [
    ("/api/lock-by-code", "code"),
    ("/api/machine/lobby-1/unlock", "client_id"),
    ("/create-order", "session_id"),
    ("/verify-payment", "razorpay_order_id"),
    ("/api/orders/o-1/feedback", "client_id"),
    ("/api/machine/lobby-1/trigger-dispense", "order_id"),
    ("/api/test-gateway/checkout", "outcome"),
    ("/api/admin/login", "username"),
]


@pytest.mark.parametrize(("path", "first"), OPEN_ROUTES)
async def test_the_server_refuses_a_body_missing_its_first_field(
    http: httpx.AsyncClient, path: str, first: str
) -> None:
    response = await http.post(path, json={})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_request",
        "message": f"{first} must be a string",
    }

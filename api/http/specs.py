"""Each route's request body, written once: parsed by the route, described by /openapi.json.

A spec is a tuple of fields, checked in order (the first bad field is the error).
``rule`` holds JSON Schema keywords a service checks after parsing (a price's floor,
the rating's values): written here so the document shows them, enforced there so the
error stays the service's own.
"""

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from api.errors import InvalidItems, InvalidRequest
from api.http import body as b
from schema import models
from schema.models import FEEDBACK_COMMENT_MAX

MACHINE_ID_PATTERN = {"pattern": "^[A-Za-z0-9_-]{1,32}$"}


@dataclass(frozen=True)
class Text:
    """A string of min_len..max_len characters; when not required, null or absent is `absent`."""

    name: str
    max_len: int
    min_len: int = 1
    required: bool = True
    absent: str | None = None
    choices: tuple[str, ...] = ()
    rule: dict[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Integer:
    """An integer in low..high; `high` may name an earlier field whose value is the bound."""

    name: str
    low: int
    high: int | str
    default: int | None = None
    rule: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    optional: bool = False  # null or absent reads as None

    @property
    def required(self) -> bool:
        return self.default is None and not self.optional


@dataclass(frozen=True)
class Object:
    """A nested object; anything but an object reads as an empty one."""

    name: str
    fields: "Spec"
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class Boolean:
    """true or false; absent or null reads as ``default``."""

    name: str
    default: bool
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Array:
    """A list of 1..max_items objects (each read by a spec) or strings (a Text);
    null or absent is None unless required. A bad item raises ``error``."""

    name: str
    fields: "Spec | Text"
    max_items: int
    required: bool = False
    description: str = ""
    error: type[InvalidRequest] = InvalidRequest


@dataclass(frozen=True)
class Flag:
    """true or false; absent or null reads as None."""

    name: str
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Texts:
    """A list of up to max_items strings of 1..max_len characters; absent or null is None."""

    name: str
    max_items: int
    max_len: int
    required: bool = False
    rule: dict[str, Any] = field(default_factory=dict)
    description: str = ""


Field = Text | Integer | Object | Array | Boolean | Flag | Texts
Spec = tuple[Field, ...]


def parse(spec: Spec, body: dict[str, Any]) -> dict[str, Any]:
    """The body's fields, checked in the spec's order; InvalidRequest on the first bad one."""
    out: dict[str, Any] = {}
    for f in spec:
        out[f.name] = _value(f, body, out)
    return out


async def read(request: Request, spec: Spec | None = None) -> dict[str, Any]:
    """The request's JSON body, parsed by the spec its route declares (``api.http.route_table``).

    A ``spec`` given here must be the declared one: the document and the parsing never part.
    """
    declared: Spec | None = getattr(request.scope.get("route"), "spec", None)
    if spec is None:
        spec = declared
    if spec is None or (declared is not None and declared is not spec):
        raise TypeError(f"{request.url.path}: the route declares no such body")
    return parse(spec, await b.json_object(request))


def _value(f: Field, body: dict[str, Any], seen: dict[str, Any]) -> Any:
    if isinstance(f, Object):
        inner = body.get(f.name)
        return parse(f.fields, inner if isinstance(inner, dict) else {})
    if isinstance(f, Boolean):
        flag = body.get(f.name)
        if flag is None:
            return f.default
        if not isinstance(flag, bool):
            raise InvalidRequest(f"{f.name} must be true or false")
        return flag
    if isinstance(f, Array):
        return _items(f, body.get(f.name))
    if isinstance(f, Flag):
        flag = body.get(f.name)
        if flag is None and not f.required:
            return None
        if not isinstance(flag, bool):
            raise InvalidRequest(f"{f.name} must be true or false")
        return flag
    if isinstance(f, Texts):
        return _texts(f, body.get(f.name))
    if isinstance(f, Integer):
        if f.optional and body.get(f.name) is None:
            return None
        high = seen[f.high] if isinstance(f.high, str) else f.high
        return b.integer(body, f.name, low=f.low, high=high, default=f.default)
    if not f.required and body.get(f.name) is None:
        return f.absent
    value = b.text(body, f.name, max_len=f.max_len, min_len=f.min_len)
    if f.choices and value not in f.choices:
        raise InvalidRequest(f"{f.name} must be {' or '.join(f.choices)}")
    return value


def _items(f: Array, items: Any) -> list[Any] | None:
    if items is None and not f.required:
        return None
    if not isinstance(items, list) or not 1 <= len(items) <= f.max_items:
        raise f.error(f"{f.name} must be a list of 1 to {f.max_items} items")
    try:
        if isinstance(f.fields, Text):
            text = f.fields
            return [_value(text, {text.name: item}, {}) for item in items]
        if not all(isinstance(item, dict) for item in items):
            raise InvalidRequest("each item must be an object")
        return [parse(f.fields, item) for item in items]
    except InvalidRequest as exc:
        raise f.error(f"{f.name}: {exc.message}") from exc


def _texts(f: Texts, items: Any) -> list[str] | None:
    if items is None and not f.required:
        return None
    fits = isinstance(items, list) and len(items) <= f.max_items
    if not fits or not all(isinstance(i, str) and 1 <= len(i) <= f.max_len for i in items):
        raise InvalidRequest(
            f"{f.name} must be a list of at most {f.max_items} strings "
            f"of 1 to {f.max_len} characters"
        )
    return list(items)


def schema(spec: Spec) -> dict[str, Any]:
    """The JSON Schema of a body that follows the spec."""
    return {
        "type": "object",
        "properties": {f.name: _field_schema(f, spec) for f in spec},
        "required": [f.name for f in spec if f.required],
    }


def _field_schema(f: Field, spec: Spec) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(f, Object):
        out = schema(f.fields)
    elif isinstance(f, Array):
        items = (
            _field_schema(f.fields, (f.fields,)) if isinstance(f.fields, Text) else schema(f.fields)
        )
        out = {"type": "array", "items": items, "minItems": 1, "maxItems": f.max_items}
        if not f.required:
            out["type"] = ["array", "null"]
    elif isinstance(f, Boolean):
        out = {"type": "boolean", "default": f.default}
    elif isinstance(f, Flag):
        out = {"type": "boolean"}
    elif isinstance(f, Texts):
        item = {"type": "string", "minLength": 1, "maxLength": f.max_len}
        kind: Any = "array" if f.required else ["array", "null"]
        out = {"type": kind, "maxItems": f.max_items, "items": item, **f.rule}
    elif isinstance(f, Integer):
        out = {"type": "integer", "minimum": f.low, "maximum": _bound(f.high, spec), **f.rule}
    elif f.choices or "enum" in f.rule:
        out = {"enum": list(f.choices) or f.rule["enum"]}
    else:
        out = {"type": "string", "minLength": f.min_len, "maxLength": f.max_len, **f.rule}
        if not f.required:
            out["type"] = ["string", "null"]
    if f.description:
        out["description"] = f.description
    return out


def _bound(high: int | str, spec: Spec) -> int:
    """A bound named by another field is documented as that field's own maximum."""
    if isinstance(high, int):
        return high
    other = next(f for f in spec if f.name == high)
    assert isinstance(other, Integer)
    return _bound(other.high, spec)


CLIENT_ID = Text("client_id", 64, description="The shopper's browser, a random id it keeps")
SESSION_ID = Text("session_id", 40, description="The lock's session, from lock-by-code")

LOCK_BY_CODE: Spec = (
    Text("code", 16, description="The code on the machine's display"),
    CLIENT_ID,
    Text("machine_id", 32, required=False, rule=MACHINE_ID_PATTERN),
)
UNLOCK: Spec = (CLIENT_ID, SESSION_ID)
EXTEND: Spec = (CLIENT_ID, SESSION_ID)
SLOT_ID_PATTERN = {"pattern": "^[A-Z0-9]{1,4}$"}
CART_ITEM: Spec = (
    Text("slot", 4, rule=SLOT_ID_PATTERN, description="The slot's id, e.g. A1"),
    Integer("quantity", 1, 1000),
)
CREATE_ORDER: Spec = (
    SESSION_ID,
    CLIENT_ID,
    Integer(
        "quantity",
        1,
        1000,
        optional=True,
        description="The v1 form: units of a one-slot machine's only slot (instead of items)",
    ),
    Array(
        "items",
        CART_ITEM,
        60,
        description="What to buy: each slot at most once",
        error=InvalidItems,
    ),
)
PRICE: Spec = (
    Integer("amount", 0, 10_000_000, rule={"minimum": 100}, description="In paise"),
    Text("currency", 3, min_len=3, choices=("INR",)),
)
PRODUCT: Spec = (
    Text("name", 40),
    Object("price", PRICE, description="The default price of the product's slots"),
    Text("sku", 64, required=False),
    Boolean("active", True, description="Inactive products cannot be ordered"),
)
SLOT_PLAN: Spec = (
    Text("id", 4, rule=SLOT_ID_PATTERN, description="What shoppers pick, e.g. A1"),
    Integer("motor", 0, 255, description="The machine's own motor index (never shown)"),
    Text("product", 40, description="A product id from the catalogue"),
    Integer("capacity", 1, 1000),
    Integer("par", 0, "capacity", description="Refill-to level"),
    Boolean("enabled", True),
    Integer(
        "price_override",
        0,
        10_000_000,
        optional=True,
        rule={"minimum": 100},
        description="In paise; null: the product's price",
    ),
    Integer("stock", 0, "capacity", optional=True, description="null: keep what the slot holds"),
)
PLANOGRAM: Spec = (
    Integer("version", 0, 2_147_483_647, description="The version the editor read"),
    Array("slots", SLOT_PLAN, 60, required=True, description="In display order"),
)
COPY_PLANOGRAM: Spec = (
    Array("machines", Text("machine_id", 32, rule=MACHINE_ID_PATTERN), 500, required=True),
)
RESTOCK_COUNT: Spec = (Text("id", 4, rule=SLOT_ID_PATTERN), Integer("stock", 0, 1000))
RESTOCK: Spec = (
    Array("slots", RESTOCK_COUNT, 60, description="Each slot's stock as counted"),
    Text("fill", 8, required=False, choices=("par", "capacity"), description="Or fill them all"),
)
VERIFY_PAYMENT: Spec = (
    Text("razorpay_order_id", 64),
    Text("razorpay_payment_id", 64),
    Text("razorpay_signature", 256),
)
FEEDBACK: Spec = (
    CLIENT_ID,
    Text("rating", 8, rule={"enum": ["up", "down"]}),
    Text("comment", FEEDBACK_COMMENT_MAX, min_len=0, required=False),
)
TRIGGER_DISPENSE: Spec = (Text("order_id", 40), CLIENT_ID)
TEST_CHECKOUT: Spec = (
    Text("outcome", 8, choices=("pay", "fail")),
    Text("gateway_order_id", 64),
)
CONFIRM: Spec = (
    Text("cmd_id", 64),
    Integer("dispensed", 0, 1000, description="Units that came out"),
)
REPORT_ERROR: Spec = (
    Text("code", 128),
    Text("detail", 512, min_len=0, required=False, absent=""),
)
LOGIN: Spec = (Text("username", 64), Text("password", 256))
PRICE_BODY: Spec = (
    Integer("amount", 0, 10_000_000, rule={"minimum": 100}, description="In paise"),
    Text("currency", 3, min_len=3, rule={"enum": ["INR"]}),
)
REGISTER: Spec = (
    Integer("capacity", 1, 10_000),
    Text("machine_id", 32, rule=MACHINE_ID_PATTERN),
    Text("name", 100),
    Text("location", 200, required=False),
    Object("price", PRICE_BODY),
    Integer("stock", 0, "capacity", default=0),
)
UPDATE_STOCK: Spec = (Integer("stock", 0, 10_000),)
SET_PRICE: Spec = (Object("price", PRICE_BODY),)
ROLE_NAMES = ("admin", "operator", "restocker", "viewer")
LOCATIONS = Texts(
    "locations", 100, 200, description="Only machines at these locations; null: every machine"
)
CREATE_USER: Spec = (
    Text("username", 64, description="1-64 letters, digits or ._-@"),
    Text("password", 256, description="At least 10 characters"),
    Text("role", 16, rule={"enum": list(ROLE_NAMES)}),
    LOCATIONS,
)
CHANGE_USER: Spec = (
    Text("role", 16, required=False, rule={"enum": list(ROLE_NAMES)}),
    Flag("disabled", description="A disabled user's tokens and cookies stop working"),
    Text("password", 256, required=False, description="A new password (10+ characters)"),
    LOCATIONS,
)
WEBHOOK_EVENTS = [
    event for event in models.WEBHOOK_EVENTS if event != "test"
]  # one may subscribe to
CREATE_WEBHOOK: Spec = (
    Text("url", 500, description="Any http(s) URL, loopback and private addresses included"),
    Texts(
        "events", 5, 32, required=True, rule={"minItems": 1}, description=", ".join(WEBHOOK_EVENTS)
    ),
)
MANUAL_REFUND: Spec = (
    Integer("amount", 1, 10_000_000, description="In paise, at most what is left to refund"),
    Text("reason", 300, min_len=0, required=False, absent="", description="Why (required)"),
)

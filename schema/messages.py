"""Every SmartVend MQTT payload, as the server sees them, and their JSON Schemas.

The machine's kinds and the checker live in :mod:`schema.wire` (portable: the
firmware loads it); this module adds the kinds only the server speaks (``state``,
``sales`` and ``today``, to integrators) and builds :data:`SCHEMAS` from the same field
tables, so validation and the published schemas cannot drift apart. ``decode``
and ``encode`` raise only :class:`SchemaError`. Server side only (CPython).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast, overload

from schema import updates, wire
from schema.jsonschema import build_schemas
from schema.wire import (
    CLEAR,
    MAX_INT,
    MAX_PAYLOAD,
    MAX_TELEMETRY_KEY,
    MAX_TELEMETRY_KEYS,
    status_lost,
    status_online,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Literal, NotRequired, TypedDict

    from schema.wire import Kind

    # The payloads as the server's code types them: one TypedDict per kind, its
    # keys the field table's (tests/schema/test_typed_messages.py holds the two
    # together), so mypy catches a misspelled field where a payload is built or read.

    class StatusMsg(TypedDict):
        state: Literal["online", "lost"]
        boot: int
        fw: NotRequired[str]
        ts: NotRequired[int]

    class SlotStockMsg(TypedDict):
        id: str
        stock: int

    class ReportedMsg(TypedDict):
        desired_version: int
        mode: Literal["idle", "locked", "dispensing", "error", "out_of_service"]
        stock: int | None
        ts: int
        slots: NotRequired[list[SlotStockMsg]]

    class EventsMsg(TypedDict):
        type: Literal["error", "jam", "door_open", "door_closed", "restocked"]
        code: str
        detail: str
        ts: int

    class LineCountMsg(TypedDict):
        slot: str
        dispensed: int

    class ResultsMsg(TypedDict):
        cmd_id: str
        status: Literal[
            "accepted", "running", "succeeded", "failed", "rejected", "expired", "unknown"
        ]
        dispensed: int
        error: NotRequired[str]
        ts: int
        lines: NotRequired[list[LineCountMsg]]

    class PriceMsg(TypedDict):
        amount: int
        currency: str

    class DisplayMsg(TypedDict):
        code: str
        expires_at: int

    class LockMsg(TypedDict):
        session: str
        expires_at: int

    class SlotMsg(TypedDict):
        id: str
        motor: int
        name: str
        price: PriceMsg
        stock: int
        enabled: bool

    class DesiredMsg(TypedDict):
        version: int
        mode: Literal["in_service", "out_of_service"]
        display: DisplayMsg | None
        lock: LockMsg | None
        price: PriceMsg
        stock: int
        slots: NotRequired[list[SlotMsg]]

    class CmdLineMsg(TypedDict):
        slot: str
        motor: int
        quantity: int

    class CmdMsg(TypedDict):
        cmd_id: str
        action: Literal["dispense"]
        quantity: int
        order: str
        issued_at: int
        expires_at: int
        lines: NotRequired[list[CmdLineMsg]]

    class ServerStatusMsg(TypedDict):
        state: Literal["online", "offline"]
        ts: NotRequired[int]

    class StateSlotMsg(TypedDict):
        id: str
        name: str
        price: PriceMsg
        stock: int
        enabled: bool

    class StateMsg(TypedDict):
        online: bool
        mode: str
        stock: int
        busy: bool
        price: PriceMsg
        last_seen: int | None
        slots: NotRequired[list[StateSlotMsg]]

    class SaleLineMsg(TypedDict):
        slot: str
        product: str
        quantity: int
        unit_amount: int
        amount: int

    class SalesMsg(TypedDict):
        order: str
        quantity: int
        amount: int
        currency: str
        ts: int
        lines: NotRequired[list[SaleLineMsg]]

    class TodayMsg(TypedDict):
        day: str
        since: int
        vends: int
        amount: int
        currency: str
        fw: str | None
        ts: int

    # ``ts`` and any number of numeric readings.
    TelemetryMsg = dict[str, int | float]

__all__ = [
    "CLEAR",
    "KINDS",
    "MAX_INT",
    "MAX_PAYLOAD",
    "MAX_TELEMETRY_KEY",
    "MAX_TELEMETRY_KEYS",
    "SCHEMAS",
    "decode",
    "encode",
    "server_offline",
    "server_online",
    "status_lost",
    "status_online",
]

_INT = ("int", False, 0, MAX_INT)
_PRICE = wire._PRICE
_SLOT_ID = wire._SLOT_ID
_STATE_SLOT = (
    "obj",
    False,
    (
        ("id", _SLOT_ID, True),
        ("name", wire._NAME, True),
        ("price", _PRICE, True),
        ("stock", _INT, True),
        ("enabled", ("bool", False), True),
    ),
)
_SALE_LINE = (
    "obj",
    False,
    (
        ("slot", _SLOT_ID, True),
        ("product", ("str", False, 1, 64, None), True),
        ("quantity", _INT, True),
        ("unit_amount", _INT, True),
        ("amount", _INT, True),
    ),
)

SERVER_SPECS: dict[str, Kind] = {
    "state": (
        (
            ("online", ("bool", False), True),
            ("mode", ("str", False, 1, 32, None), True),
            ("stock", _INT, True),
            ("busy", ("bool", False), True),
            ("price", _PRICE, True),
            ("last_seen", ("int", True, 0, MAX_INT), True),
            ("slots", ("list", False, 1, wire.MAX_SLOTS, _STATE_SLOT), False),
        ),
        (),
        None,
    ),
    "sales": (
        (
            ("order", ("str", False, 1, 128, None), True),
            ("quantity", ("int", False, 1, MAX_INT), True),
            ("amount", _INT, True),
            ("currency", ("str", False, 3, 3, "upper"), True),
            ("ts", _INT, True),
            ("lines", ("list", False, 1, wire.MAX_SLOTS, _SALE_LINE), False),
        ),
        (),
        None,
    ),
    # The machine's figures for the local day (TIMEZONE), retained and kept current.
    "today": (
        (
            ("day", ("str", False, 10, 10, None), True),
            ("since", _INT, True),
            ("vends", _INT, True),
            ("amount", ("int", False, -MAX_INT, MAX_INT), True),
            ("currency", ("str", False, 3, 3, "upper"), True),
            ("fw", ("str", True, 1, 32, None), True),
            ("ts", _INT, True),
        ),
        (),
        None,
    ),
}
SPECS: dict[str, Kind] = {**wire.SPECS, **SERVER_SPECS}
KINDS = tuple(SPECS)
# "text": no control characters, nothing past the BMP (see wire).
_PATTERNS = {
    "digits": "0-9",
    "upper": "A-Z",
    "id": "A-Za-z0-9_-",
    "slot": "A-Z0-9",
    "text": "\\u0020-\\u007e\\u0080-\\uffff",
    "hex": "0-9a-f",
    "version": "A-Za-z0-9_.+-",
}

SCHEMAS = build_schemas(KINDS, SPECS, _PATTERNS, MAX_TELEMETRY_KEYS, MAX_TELEMETRY_KEY)
# Firmware updates (contract section 6) share the ``cmd`` and ``results`` topics: an update
# command, and the results of one (``progress`` added). Their field tables live apart
# (``schema.updates``, loaded on a machine only when an update arrives); their schemas
# stand beside the others, for the AsyncAPI document.
UPDATE_KINDS = tuple(updates.SPECS)
UPDATE_SCHEMAS = build_schemas(
    UPDATE_KINDS, updates.SPECS, _PATTERNS, MAX_TELEMETRY_KEYS, MAX_TELEMETRY_KEY
)
# The topic each update kind travels on.
UPDATE_TOPIC_KINDS = {"update": "cmd", "update_result": "results"}


@overload
def encode(kind: Literal["desired"], obj: DesiredMsg) -> bytes: ...
@overload
def encode(kind: Literal["cmd"], obj: CmdMsg) -> bytes: ...
@overload
def encode(kind: Literal["state"], obj: StateMsg) -> bytes: ...
@overload
def encode(kind: Literal["sales"], obj: SalesMsg) -> bytes: ...
@overload
def encode(kind: Literal["server_status"], obj: ServerStatusMsg) -> bytes: ...
@overload
def encode(kind: Literal["today"], obj: TodayMsg) -> bytes: ...
@overload
def encode(kind: str, obj: Mapping[str, Any]) -> bytes: ...
def encode(kind: str, obj: Mapping[str, Any]) -> bytes:
    """Validate ``obj`` as a ``kind`` payload and return it as compact UTF-8 JSON."""
    return wire.encode_in(SPECS, kind, cast("dict[str, Any]", obj))  # checked there


@overload
def decode(kind: Literal["status"], payload: bytes) -> StatusMsg: ...
@overload
def decode(kind: Literal["reported"], payload: bytes) -> ReportedMsg: ...
@overload
def decode(kind: Literal["events"], payload: bytes) -> EventsMsg: ...
@overload
def decode(kind: Literal["results"], payload: bytes) -> ResultsMsg: ...
@overload
def decode(kind: Literal["telemetry"], payload: bytes) -> TelemetryMsg: ...
@overload
def decode(kind: Literal["desired"], payload: bytes) -> DesiredMsg: ...
@overload
def decode(kind: Literal["cmd"], payload: bytes) -> CmdMsg: ...
@overload
def decode(kind: Literal["server_status"], payload: bytes) -> ServerStatusMsg: ...
@overload
def decode(kind: Literal["state"], payload: bytes) -> StateMsg: ...
@overload
def decode(kind: Literal["sales"], payload: bytes) -> SalesMsg: ...
@overload
def decode(kind: Literal["today"], payload: bytes) -> TodayMsg: ...
@overload
def decode(kind: str, payload: bytes) -> Any: ...  # a kind known only at run time
def decode(kind: str, payload: bytes) -> Any:
    """Parse and validate a ``kind`` payload; unknown fields are dropped."""
    return wire.decode_in(SPECS, kind, payload)


def server_online(ts: int) -> bytes:
    return encode("server_status", {"state": "online", "ts": ts})


def server_offline(ts: int | None = None) -> bytes:
    """The server's last will (no time) or its orderly goodbye (with one)."""
    obj: ServerStatusMsg = {"state": "offline"}
    if ts is not None:
        obj["ts"] = ts
    return encode("server_status", obj)

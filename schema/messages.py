"""Every SmartVend MQTT payload, as the server sees them, and their JSON Schemas.

The machine's kinds and the checker live in :mod:`schema.wire` (portable: the
firmware loads it); this module adds the kinds only the server speaks (``state``
and ``sales``, to integrators) and builds :data:`SCHEMAS` from the same field
tables, so validation and the published schemas cannot drift apart. ``decode``
and ``encode`` raise only :class:`SchemaError`. Server side only (CPython).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schema import wire
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
    from schema.wire import Kind

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
_PRICE = ("obj", False, (("amount", _INT, True), ("currency", ("str", False, 3, 3, "upper"), True)))

SERVER_SPECS: dict[str, Kind] = {
    "state": (
        (
            ("online", ("bool", False), True),
            ("mode", ("str", False, 1, 32, None), True),
            ("stock", _INT, True),
            ("busy", ("bool", False), True),
            ("price", _PRICE, True),
            ("last_seen", ("int", True, 0, MAX_INT), True),
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
        ),
        (),
        None,
    ),
}
SPECS: dict[str, Kind] = {**wire.SPECS, **SERVER_SPECS}
KINDS = tuple(SPECS)
_PATTERNS = {"digits": "0-9", "upper": "A-Z", "id": "A-Za-z0-9_-"}

SCHEMAS = build_schemas(KINDS, SPECS, _PATTERNS, MAX_TELEMETRY_KEYS, MAX_TELEMETRY_KEY)


def encode(kind: str, obj: dict[str, Any]) -> bytes:
    """Validate ``obj`` as a ``kind`` payload and return it as compact UTF-8 JSON."""
    return wire.encode_in(SPECS, kind, obj)


def decode(kind: str, payload: bytes) -> dict[str, Any]:
    """Parse and validate a ``kind`` payload; unknown fields are dropped."""
    return wire.decode_in(SPECS, kind, payload)


def server_online(ts: int) -> bytes:
    return encode("server_status", {"state": "online", "ts": ts})


def server_offline(ts: int | None = None) -> bytes:
    """The server's last will (no time) or its orderly goodbye (with one)."""
    obj: dict[str, Any] = {"state": "offline"}
    if ts is not None:
        obj["ts"] = ts
    return encode("server_status", obj)

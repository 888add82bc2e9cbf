"""Encode and decode every SmartVend MQTT payload.

One field table per message kind drives both validation and the JSON Schemas in
:data:`SCHEMAS`, so the two cannot drift apart. ``decode`` and ``encode`` raise
only :class:`SchemaError`.

Portable: runs under CPython and MicroPython (only ``json`` at run time; no
typing, dataclasses, enum or re).
"""

import json

from schema import topics
from schema.errors import SchemaError
from schema.jsonschema import build_schemas

TYPE_CHECKING = False  # mypy reads the block below; no runtime ever runs it
if TYPE_CHECKING:
    from typing import Any

    from schema.jsonschema import Field, Rule, Spec

KINDS = (
    "status",
    "reported",
    "telemetry",
    "events",
    "results",
    "desired",
    "cmd",
    "server_status",
    "state",
    "sales",
)
MAX_PAYLOAD = 4096
MAX_INT = 9007199254740991  # 2**53 - 1: the largest integer every JSON reader keeps exact
MAX_TELEMETRY_KEYS = 32
MAX_TELEMETRY_KEY = 32
# The payload that clears a retained topic (a finished command).
CLEAR = b""

_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# -- field specs: plain dicts, read by the checker below and by schema.jsonschema --


def _int(lo: int = 0) -> "Spec":
    return {"t": "int", "min": lo, "max": MAX_INT}


def _str(hi: int, lo: int = 1) -> "Spec":
    return {"t": "str", "min": lo, "max": hi}


def _chars(cls: str, lo: int, hi: int) -> "Spec":
    return {"t": "str", "min": lo, "max": hi, "chars": cls}


def _enum(*values: str) -> "Spec":
    return {"t": "enum", "of": values}


def _obj(*fields: "Field") -> "Spec":
    return {"t": "obj", "fields": fields}


def _nullable(spec: "Spec") -> "Spec":
    spec["null"] = True
    return spec


def _req(name: str, spec: "Spec") -> "Field":
    return (name, spec, True)


def _opt(name: str, spec: "Spec") -> "Field":
    return (name, spec, False)


def _time() -> "Spec":
    return _int(0)


def _cmd_id() -> "Spec":
    return _chars("id", 1, topics.MAX_CMD_ID)


def _price() -> "Spec":
    return _obj(_req("amount", _int(0)), _req("currency", _chars("upper", 3, 3)))


# Each kind: (fields, rules, extra). A rule (field, value, effect, names) applies
# when ``field`` equals ``value`` (``value`` None: when ``field`` is not null);
# effect "require" makes ``names`` required, "null" makes them null.
# ``extra`` is the spec of the values of any further keys (telemetry only).
_SPECS: "dict[str, tuple[tuple[Field, ...], tuple[Rule, ...], Spec | None]]" = {
    "status": (
        (
            _req("state", _enum("online", "lost")),
            _req("boot", _int(0)),
            _opt("fw", _str(32)),
            _opt("ts", _time()),
        ),
        (("state", "online", "require", ("fw", "ts")),),
        None,
    ),
    "reported": (
        (
            _req("desired_version", _int(0)),
            _req("mode", _enum("idle", "locked", "dispensing", "error", "out_of_service")),
            _req("stock", _nullable(_int(0))),
            _req("ts", _time()),
        ),
        (),
        None,
    ),
    "telemetry": ((_req("ts", _time()),), (), {"t": "num"}),
    "events": (
        (
            _req("type", _enum("error", "jam", "door_open", "door_closed", "restocked")),
            _req("code", _str(128)),
            _req("detail", _str(512, 0)),
            _req("ts", _time()),
        ),
        (),
        None,
    ),
    "results": (
        (
            _req("cmd_id", _cmd_id()),
            _req(
                "status",
                _enum(
                    "accepted", "running", "succeeded", "failed", "rejected", "expired", "unknown"
                ),
            ),
            _req("dispensed", _int(0)),
            _opt("error", _str(512, 0)),
            _req("ts", _time()),
        ),
        (),
        None,
    ),
    "desired": (
        (
            _req("version", _int(0)),
            _req("mode", _enum("in_service", "out_of_service")),
            _req(
                "display",
                _nullable(_obj(_req("code", _chars("digits", 6, 6)), _req("expires_at", _time()))),
            ),
            _req("lock", _nullable(_obj(_req("session", _str(128)), _req("expires_at", _time())))),
            _req("price", _price()),
            _req("stock", _int(0)),
        ),
        (("lock", None, "null", ("display",)),),
        None,
    ),
    "cmd": (
        (
            _req("cmd_id", _cmd_id()),
            _req("action", _enum("dispense")),
            _req("quantity", _int(1)),
            _req("order", _str(128)),
            _req("issued_at", _time()),
            _req("expires_at", _time()),
        ),
        (),
        None,
    ),
    "server_status": (
        (_req("state", _enum("online", "offline")), _opt("ts", _time())),
        (("state", "online", "require", ("ts",)),),
        None,
    ),
    "state": (
        (
            _req("online", {"t": "bool"}),
            _req("mode", _str(32)),
            _req("stock", _int(0)),
            _req("busy", {"t": "bool"}),
            _req("price", _price()),
            _req("last_seen", _nullable(_time())),
        ),
        (),
        None,
    ),
    "sales": (
        (
            _req("order", _str(128)),
            _req("quantity", _int(1)),
            _req("amount", _int(0)),
            _req("currency", _chars("upper", 3, 3)),
            _req("ts", _time()),
        ),
        (),
        None,
    ),
}

_CLASSES = {"digits": _DIGITS, "upper": _UPPER, "id": topics._ID_CHARS}
_PATTERNS = {"digits": "0-9", "upper": "A-Z", "id": "A-Za-z0-9_-"}

SCHEMAS = build_schemas(KINDS, _SPECS, _PATTERNS, MAX_TELEMETRY_KEYS, MAX_TELEMETRY_KEY)


# -- validation --


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _value(spec: "Spec", value: object, path: str, strict: bool) -> object:
    if value is None:
        if spec.get("null"):
            return None
        raise SchemaError(path + ": must not be null")
    t = spec["t"]
    if t == "int":
        if not _is_int(value):
            raise SchemaError(path + ": must be an integer")
        if not spec["min"] <= value <= spec["max"]:
            raise SchemaError(path + ": out of range")
        return value
    if t == "str":
        if not isinstance(value, str) or not spec["min"] <= len(value) <= spec["max"]:
            raise SchemaError(path + ": must be a string of the allowed length")
        cls = spec.get("chars")
        if cls is not None:
            allowed = _CLASSES[cls]
            for ch in value:
                if ch not in allowed:
                    raise SchemaError(path + ": invalid character")
        return value
    if t == "enum":
        if not isinstance(value, str) or value not in spec["of"]:
            raise SchemaError(path + ": not one of " + ", ".join(spec["of"]))
        return value
    if t == "bool":
        if not isinstance(value, bool):
            raise SchemaError(path + ": must be true or false")
        return value
    if t == "num":
        # ``v - v`` is 0 for every finite number and NaN for infinities and NaN.
        if not (_is_int(value) or isinstance(value, float)) or value - value != 0:  # type: ignore[operator]
            raise SchemaError(path + ": must be a finite number")
        return value
    return _object(spec["fields"], (), None, value, path, strict)


def _object(
    fields: "tuple[Field, ...]",
    rules: "tuple[Rule, ...]",
    extra: "Spec | None",
    obj: object,
    path: str,
    strict: bool,
) -> "dict[str, Any]":
    if not isinstance(obj, dict):
        raise SchemaError(path + ": must be an object")
    out = {}
    names = []
    for name, spec, required in fields:
        names.append(name)
        if name in obj:
            out[name] = _value(spec, obj[name], path + "." + name, strict)
        elif required:
            raise SchemaError(path + "." + name + ": missing")
    for key in obj:
        if key in names:
            continue
        if extra is None:
            if strict:
                raise SchemaError(path + ": unknown field " + repr(key))
            continue
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TELEMETRY_KEY:
            raise SchemaError(path + ": invalid key " + repr(key))
        out[key] = _value(extra, obj[key], path + "." + key, strict)
    if extra is not None and len(out) > MAX_TELEMETRY_KEYS:
        raise SchemaError(path + ": too many keys")
    for field, value, effect, targets in rules:
        current = out.get(field)
        if current is None if value is None else current != value:
            continue
        for target in targets:
            if effect == "require" and target not in out:
                raise SchemaError(path + "." + target + ": missing")
            if effect == "null" and out.get(target) is not None:
                raise SchemaError(path + "." + target + ": must be null here")
    return out


def _spec_of(kind: str) -> "tuple[tuple[Field, ...], tuple[Rule, ...], Spec | None]":
    spec = _SPECS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise SchemaError("unknown message kind " + repr(kind))
    return spec


def _check(kind: str, obj: object, strict: bool) -> "dict[str, Any]":
    fields, rules, extra = _spec_of(kind)
    return _object(fields, rules, extra, obj, kind, strict)


def encode(kind: str, obj: "dict[str, Any]") -> bytes:
    """Validate ``obj`` as a ``kind`` payload and return it as compact UTF-8 JSON."""
    clean = _check(kind, obj, True)
    try:
        data = json.dumps(clean, separators=(",", ":")).encode("utf-8")
    except ValueError as exc:  # an integer too long to print (telemetry)
        raise SchemaError(kind + ": payload too large") from exc
    if len(data) > MAX_PAYLOAD:
        raise SchemaError(kind + ": payload too large")
    return data


def decode(kind: str, payload: bytes) -> "dict[str, Any]":
    """Parse and validate a ``kind`` payload; unknown fields are dropped."""
    _spec_of(kind)
    if not isinstance(payload, (bytes, bytearray)):
        raise SchemaError(kind + ": payload must be bytes")
    if not payload:
        raise SchemaError(kind + ": empty payload")
    if len(payload) > MAX_PAYLOAD:
        raise SchemaError(kind + ": payload too large")
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, RuntimeError) as exc:  # UnicodeError, JSON errors, deep nesting
        raise SchemaError(kind + ": not UTF-8 JSON") from exc
    return _check(kind, obj, False)


# -- constructors for the payloads built most often --


def status_online(boot: int, fw: str, ts: int) -> bytes:
    """The retained presence message a machine publishes right after connecting."""
    return encode("status", {"state": "online", "boot": boot, "fw": fw, "ts": ts})


def status_lost(boot: int) -> bytes:
    """The machine's last will: the broker publishes it when the connection drops."""
    return encode("status", {"state": "lost", "boot": boot})


def server_online(ts: int) -> bytes:
    return encode("server_status", {"state": "online", "ts": ts})


def server_offline(ts: int | None = None) -> bytes:
    """The server's last will (no time) or its orderly goodbye (with one)."""
    obj: dict[str, Any] = {"state": "offline"}
    if ts is not None:
        obj["ts"] = ts
    return encode("server_status", obj)

"""The MQTT payloads a machine sends and receives: checked, encoded, decoded.

One field table per message kind drives validation here and the JSON Schemas
of :mod:`schema.messages` (which adds the kinds only the server speaks), so the
two cannot drift apart. ``decode`` and ``encode`` raise only
:class:`SchemaError`.

``encode`` writes compact UTF-8 JSON itself, fields in table order (telemetry's
extra keys sorted), so a payload is the same bytes on CPython and MicroPython.

Portable and small: this is what the machine loads (only ``json`` at run time;
no typing, dataclasses, enum or re). Specs are tuples:
``("int", nullable, min, max)``, ``("str", nullable, min, max, chars)``,
``("enum", nullable, values)``, ``("bool", nullable)``, ``("num", nullable)``,
``("obj", nullable, fields)``, ``("list", nullable, min, max, item spec)``; a field
is ``(name, spec, required)``.

Several products per machine (contract section 5, additive): ``desired`` may carry
``slots`` (display order), ``cmd`` may carry ``lines`` (a command without them is one
line on the only slot, motor 0), ``results`` carry ``lines`` on ``running`` and every
final status of such a command, ``reported`` may carry ``slots`` with their stock.
Product names on the wire are "text": no control characters and nothing beyond the
Basic Multilingual Plane (at most 3 bytes each in UTF-8), so a 60-slot ``desired``
with 40-character names always fits the broker's 16 KiB (tests/schema).
"""

import json

from schema import statuses, topics
from schema.errors import SchemaError

try:
    from micropython import const
except ImportError:  # CPython

    def const(value: int) -> int:
        return value


TYPE_CHECKING = False  # mypy reads the block below; no runtime ever runs it
if TYPE_CHECKING:
    from typing import Any

    Spec = tuple[Any, ...]
    Field = tuple[str, Spec, bool]
    # (field, value or None for "not null", "require"|"null", target names)
    Rule = tuple[str, str | None, str, tuple[str, ...]]
    Kind = tuple[tuple[Field, ...], tuple[Rule, ...], Spec | None]

MAX_PAYLOAD = const(16384)  # the broker's MQTT_MAX_PAYLOAD default
MAX_INT = 9007199254740991  # 2**53 - 1: the largest integer every JSON reader keeps exact
MAX_TELEMETRY_KEYS = const(32)
MAX_TELEMETRY_KEY = const(32)
# The payload that clears a retained topic (a finished command).
CLEAR = b""

MAX_SLOTS = const(60)
MAX_MOTOR = const(99)
CHARS = {
    "digits": "0123456789",
    "upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "id": topics._ID_CHARS,
    "slot": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
}

_INT = ("int", False, 0, MAX_INT)
_POSITIVE = ("int", False, 1, MAX_INT)
_TIME = _INT
_CMD_ID = ("str", False, 1, topics.MAX_CMD_ID, "id")
_TEXT = ("str", False, 0, 512, None)
_SLOT_ID = ("str", False, 1, 4, "slot")
_MOTOR = ("int", False, 0, MAX_MOTOR)
_PRICE = ("obj", False, (("amount", _INT, True), ("currency", ("str", False, 3, 3, "upper"), True)))
# A product's name as shoppers read it: 1-40 characters of "text" (see above).
_NAME = ("str", False, 1, 40, "text")
_LINE_COUNTS = (
    "list",
    False,
    1,
    MAX_SLOTS,
    ("obj", False, (("slot", _SLOT_ID, True), ("dispensed", _INT, True))),
)

# Each kind: (fields, rules, extra). A rule (field, value, effect, names) applies
# when ``field`` equals ``value`` (``value`` None: when ``field`` is not null);
# effect "require" makes ``names`` required, "null" makes them null.
# ``extra`` is the spec of the values of any further keys (telemetry only).
SPECS: "dict[str, Kind]" = {
    "status": (
        (
            ("state", ("enum", False, ("online", "lost")), True),
            ("boot", _INT, True),
            ("fw", ("str", False, 1, 32, None), False),
            ("ts", _TIME, False),
        ),
        (("state", "online", "require", ("fw", "ts")),),
        None,
    ),
    "reported": (
        (
            ("desired_version", _INT, True),
            (
                "mode",
                ("enum", False, ("idle", "locked", "dispensing", "error", "out_of_service")),
                True,
            ),
            ("stock", ("int", True, 0, MAX_INT), True),
            ("ts", _TIME, True),
            (
                "slots",
                (
                    "list",
                    False,
                    1,
                    MAX_SLOTS,
                    ("obj", False, (("id", _SLOT_ID, True), ("stock", _INT, True))),
                ),
                False,
            ),
        ),
        (),
        None,
    ),
    "telemetry": ((("ts", _TIME, True),), (), ("num", False)),
    "events": (
        (
            (
                "type",
                ("enum", False, ("error", "jam", "door_open", "door_closed", "restocked")),
                True,
            ),
            ("code", ("str", False, 1, 128, None), True),
            ("detail", _TEXT, True),
            ("ts", _TIME, True),
        ),
        (),
        None,
    ),
    "results": (
        (
            ("cmd_id", _CMD_ID, True),
            (
                "status",
                ("enum", False, statuses.RESULT),
                True,
            ),
            ("dispensed", _INT, True),
            ("error", _TEXT, False),
            ("ts", _TIME, True),
            ("lines", _LINE_COUNTS, False),
        ),
        (),
        None,
    ),
    "desired": (
        (
            ("version", _INT, True),
            ("mode", ("enum", False, ("in_service", "out_of_service")), True),
            (
                "display",
                (
                    "obj",
                    True,
                    (("code", ("str", False, 6, 6, "digits"), True), ("expires_at", _TIME, True)),
                ),
                True,
            ),
            (
                "lock",
                (
                    "obj",
                    True,
                    (("session", ("str", False, 1, 128, None), True), ("expires_at", _TIME, True)),
                ),
                True,
            ),
            ("price", _PRICE, True),
            ("stock", _INT, True),
            (
                "slots",
                (
                    "list",
                    False,
                    1,
                    MAX_SLOTS,
                    (
                        "obj",
                        False,
                        (
                            ("id", _SLOT_ID, True),
                            ("motor", _MOTOR, True),
                            ("name", _NAME, True),
                            ("price", _PRICE, True),
                            ("stock", _INT, True),
                            ("enabled", ("bool", False), True),
                        ),
                    ),
                ),
                False,
            ),
        ),
        (("lock", None, "null", ("display",)),),
        None,
    ),
    "cmd": (
        (
            ("cmd_id", _CMD_ID, True),
            ("action", ("enum", False, ("dispense",)), True),
            ("quantity", _POSITIVE, True),
            ("order", ("str", False, 1, 128, None), True),
            ("issued_at", _TIME, True),
            ("expires_at", _TIME, True),
            (
                "lines",
                (
                    "list",
                    False,
                    1,
                    MAX_SLOTS,
                    (
                        "obj",
                        False,
                        (
                            ("slot", _SLOT_ID, True),
                            ("motor", _MOTOR, True),
                            ("quantity", _POSITIVE, True),
                        ),
                    ),
                ),
                False,
            ),
        ),
        (),
        None,
    ),
    "server_status": (
        (("state", ("enum", False, ("online", "offline")), True), ("ts", _TIME, False)),
        (("state", "online", "require", ("ts",)),),
        None,
    ),
}
KINDS = tuple(SPECS)

# -- validation --


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _value(spec: "Spec", value: object, strict: bool) -> object:
    """``value`` checked against ``spec``; errors say ``": what"``, the callers put
    the field's path in front (built only on error: a 60-slot ``desired`` would
    otherwise build a path string for each of its 480 values)."""
    if value is None:
        if spec[1]:
            return None
        raise SchemaError(": must not be null")
    t = spec[0]
    if t == "int":
        if not _is_int(value):
            raise SchemaError(": must be an integer")
        if not spec[2] <= value <= spec[3]:
            raise SchemaError(": out of range")
        return value
    if t == "str":
        if not isinstance(value, str) or not spec[2] <= len(value) <= spec[3]:
            raise SchemaError(": must be a string of the allowed length")
        if spec[4] == "text":
            # UTF-8 bytes (small ints, no allocation each): no control characters,
            # nothing past the BMP (a 4-byte sequence starts with 0xF0 or more).
            for byte in value.encode("utf-8", "surrogatepass"):
                if byte < 32 or byte == 127 or byte >= 0xF0:
                    raise SchemaError(": invalid character")
        elif spec[4] is not None and value.strip(CHARS[spec[4]]):
            # Left over once the allowed characters are stripped: one that is not. (No
            # loop over the characters: MicroPython interns each one it hands out.)
            raise SchemaError(": invalid character")
        return value
    if t == "enum":
        if not isinstance(value, str) or value not in spec[2]:
            raise SchemaError(": not one of " + ", ".join(spec[2]))
        return value
    if t == "bool":
        if not isinstance(value, bool):
            raise SchemaError(": must be true or false")
        return value
    if t == "list":
        if not isinstance(value, list) or not spec[2] <= len(value) <= spec[3]:
            raise SchemaError(": must be a list of the allowed length")
        items = value  # the list itself unless an item had to change
        for i in range(len(value)):
            try:
                checked = _value(spec[4], value[i], strict)
            except SchemaError as exc:
                raise SchemaError("[]" + str(exc)) from None
            if checked is not value[i]:
                if items is value:
                    items = list(value)
                items[i] = checked
        return items
    if t == "num":
        # ``v - v`` is 0 for every finite number and NaN for infinities and NaN.
        if not (_is_int(value) or isinstance(value, float)) or value - value != 0:  # type: ignore[operator]
            raise SchemaError(": must be a finite number")
        return value
    return _object(spec[2], (), None, value, "", strict)


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
    # The checked object is ``obj`` itself when it has only known fields, each
    # unchanged: a 60-slot ``desired`` is checked without a copy of its slots.
    changed = None
    known = 0
    for name, spec, required in fields:
        if name in obj:
            known += 1
            try:
                checked = _value(spec, obj[name], strict)
            except SchemaError as exc:
                raise SchemaError(path + "." + name + str(exc)) from None
            if checked is not obj[name]:
                if changed is None:
                    changed = {}
                changed[name] = checked
        elif required:
            raise SchemaError(path + "." + name + ": missing")
    if changed is None and known == len(obj) and extra is None:
        out = obj
    else:
        out = {}
        for entry in fields:
            name = entry[0]
            if changed is not None and name in changed:
                out[name] = changed[name]
            elif name in obj:
                out[name] = obj[name]
    if known < len(obj) and (strict or extra is not None):
        names = [field[0] for field in fields]
        for key in obj:
            if key in names:
                continue
            if extra is None:
                raise SchemaError(path + ": unknown field " + repr(key))
            if not isinstance(key, str) or not 1 <= len(key) <= MAX_TELEMETRY_KEY:
                raise SchemaError(path + ": invalid key " + repr(key))
            try:
                out[key] = _value(extra, obj[key], strict)
            except SchemaError as exc:
                raise SchemaError(path + "." + key + str(exc)) from None
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


# -- JSON text, the same on every interpreter --


_HEX = "0123456789abcdef"
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def _quote(text: str) -> str:
    """``text`` as a JSON string: what CPython's ``json.dumps(text, ensure_ascii=False)``
    writes (MicroPython's ``json`` differs in control characters)."""
    for byte in text.encode():  # small ints: MicroPython interns no characters
        if byte < 32 or byte == 34 or byte == 92:  # a control character, '"' or '\\'
            break
    else:
        return '"' + text + '"'
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " ":
            code = ord(ch)
            out.append("\\u00" + _HEX[code >> 4] + _HEX[code & 15])
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json(value: object, spec: "Spec | None") -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        return _fields(spec[2] if spec else (), None, value)
    if isinstance(value, list):
        item = spec[4] if spec else None
        return "[" + ",".join([_json(v, item) for v in value]) + "]"
    if isinstance(value, float):
        return json.dumps(value)
    return str(value)


def _fields(fields: "tuple[Field, ...]", extra: "Spec | None", obj: "dict[str, Any]") -> str:
    parts = []
    names = []
    for name, spec, _ in fields:
        names.append(name)
        if name in obj:  # the table's own names are plain (tests/schema check it)
            parts.append('"' + name + '":' + _json(obj[name], spec))
    if extra is not None:
        for key in sorted([k for k in obj if k not in names]):
            parts.append(_quote(key) + ":" + _json(obj[key], extra))
    return "{" + ",".join(parts) + "}"


# -- encode and decode --


def _spec_of(specs: "dict[str, Kind]", kind: str) -> "Kind":
    spec = specs.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise SchemaError("unknown message kind " + repr(kind))
    return spec


def encode_in(specs: "dict[str, Kind]", kind: str, obj: "dict[str, Any]") -> bytes:
    """:func:`encode` with the kinds of ``specs``."""
    fields, rules, extra = _spec_of(specs, kind)
    clean = _object(fields, rules, extra, obj, kind, True)
    try:
        data = _fields(fields, extra, clean).encode("utf-8")
    except UnicodeError as exc:  # a lone surrogate (CPython)
        raise SchemaError(kind + ": not valid UTF-8") from exc
    except ValueError as exc:  # an integer too long to print (telemetry)
        raise SchemaError(kind + ": payload too large") from exc
    if len(data) > MAX_PAYLOAD:
        raise SchemaError(kind + ": payload too large")
    return data


def decode_in(specs: "dict[str, Kind]", kind: str, payload: bytes) -> "dict[str, Any]":
    """:func:`decode` with the kinds of ``specs``."""
    fields, rules, extra = _spec_of(specs, kind)
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
    return _object(fields, rules, extra, obj, kind, False)


def encode(kind: str, obj: "dict[str, Any]") -> bytes:
    """Validate ``obj`` as a ``kind`` payload and return it as compact UTF-8 JSON."""
    return encode_in(SPECS, kind, obj)


def decode(kind: str, payload: bytes) -> "dict[str, Any]":
    """Parse and validate a ``kind`` payload; unknown fields are dropped."""
    return decode_in(SPECS, kind, payload)


def status_online(boot: int, fw: str, ts: int) -> bytes:
    """The retained presence message a machine publishes right after connecting."""
    return encode("status", {"state": "online", "boot": boot, "fw": fw, "ts": ts})


def status_lost(boot: int) -> bytes:
    """The machine's last will: the broker publishes it when the connection drops."""
    return encode("status", {"state": "lost", "boot": boot})

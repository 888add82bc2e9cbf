"""Hand-written cases: one per rule of the wire contract's payloads."""

import json
from typing import Any

import pytest

from schema import messages
from schema.errors import SchemaError

T = 1767225600
PRICE = {"amount": 2500, "currency": "INR"}
VALID: dict[str, dict[str, Any]] = {
    "status": {"state": "online", "boot": 3, "fw": "1.0.0", "ts": T},
    "reported": {"desired_version": 4, "mode": "idle", "stock": 12, "ts": T},
    "telemetry": {"ts": T, "rssi": -61, "temp_c": 31.5, "uptime_s": 3600},
    "events": {"type": "jam", "code": "motor_stall", "detail": "spiral 1", "ts": T},
    "results": {"cmd_id": "c-1", "status": "succeeded", "dispensed": 2, "ts": T},
    "desired": {
        "version": 9,
        "mode": "in_service",
        "display": {"code": "012345", "expires_at": T + 600},
        "lock": None,
        "price": PRICE,
        "stock": 12,
    },
    "cmd": {
        "cmd_id": "c-1",
        "action": "dispense",
        "quantity": 2,
        "order": "ord_1",
        "issued_at": T,
        "expires_at": T + 120,
    },
    "server_status": {"state": "online", "ts": T},
    "state": {
        "online": True,
        "mode": "idle",
        "stock": 12,
        "busy": False,
        "price": PRICE,
        "last_seen": T,
    },
    "sales": {"order": "ord_1", "quantity": 2, "amount": 5000, "currency": "INR", "ts": T},
    "today": {
        "day": "2026-12-04",
        "since": T - 3600,
        "vends": 3,
        "amount": 7500,
        "currency": "INR",
        "fw": "1.0.0",
        "ts": T,
    },
}


def with_(kind: str, **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(json.dumps(VALID[kind]))
    obj.update(changes)
    return obj


def without(kind: str, name: str) -> dict[str, Any]:
    obj = with_(kind)
    del obj[name]
    return obj


def raw(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def assert_rejected(kind: str, obj: Any) -> None:
    """Both directions refuse ``obj``: encode from a dict and decode from the wire."""
    with pytest.raises(SchemaError):
        messages.encode(kind, obj)
    with pytest.raises(SchemaError):
        messages.decode(kind, raw(obj))


def assert_accepted(kind: str, obj: dict[str, Any]) -> None:
    assert messages.decode(kind, messages.encode(kind, obj)) == obj


def test_kinds_and_limits_are_the_contract_ones() -> None:
    assert messages.KINDS == (
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
        "today",
    )
    assert messages.MAX_PAYLOAD == 16384  # the broker's MQTT_MAX_PAYLOAD default
    assert set(messages.SCHEMAS) == set(messages.KINDS) == set(VALID)


@pytest.mark.parametrize("kind", messages.KINDS)
def test_valid_examples_round_trip_compactly(kind: str) -> None:
    payload = messages.encode(kind, VALID[kind])
    assert payload == raw(VALID[kind])
    assert b": " not in payload and b", " not in payload
    assert messages.decode(kind, payload) == VALID[kind]
    assert messages.decode(kind, bytearray(payload)) == VALID[kind]  # type: ignore[arg-type]


# -- framing --


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe{}",
        b'{"state":"\xc3"}',
        b"{",
        b"online",
        b"{'state': 'online'}",
        b"[]",
        b"1",
        b'"x"',
        b"null",
        b"true",
        b"[" * 5000,
        b"[" * 4000 + b"]" * 4000,
        b'{"a":' * 1000 + b"1" + b"}" * 1000,
        b'{"ts":' + b"9" * 4000 + b"}",
    ],
)
def test_malformed_payloads_raise_schema_error(payload: bytes) -> None:
    for kind in messages.KINDS:
        with pytest.raises(SchemaError):
            messages.decode(kind, payload)


@pytest.mark.parametrize("payload", ["{}", None, 5, {"state": "online"}, memoryview(b"{}")])
def test_payload_must_be_bytes(payload: Any) -> None:
    with pytest.raises(SchemaError, match="bytes"):
        messages.decode("status", payload)


def test_size_limit_is_16_kib() -> None:
    base = raw(VALID["status"])[:-1] + b',"pad":"'
    exact = base + b"x" * (messages.MAX_PAYLOAD - len(base) - 2) + b'"}'
    assert len(exact) == messages.MAX_PAYLOAD
    assert messages.decode("status", exact) == VALID["status"]
    over = exact[:-2] + b'x"}'
    with pytest.raises(SchemaError, match="too large"):
        messages.decode("status", over)


def test_encode_refuses_output_over_the_limit() -> None:
    four = {"ts": T, **{k: 10**4000 for k in "abcd"}}
    assert_accepted("telemetry", four)  # 16,041 bytes
    for huge in ({**four, "e": 10**4000}, {"ts": T, "n": 10**5000}):
        with pytest.raises(SchemaError, match="too large"):
            messages.encode("telemetry", huge)


@pytest.mark.parametrize("kind", ["nope", "", "Status", None, 3, ["status"], {}])
def test_unknown_kind(kind: Any) -> None:
    with pytest.raises(SchemaError, match="unknown message kind"):
        messages.encode(kind, {})
    with pytest.raises(SchemaError, match="unknown message kind"):
        messages.decode(kind, b"{}")


@pytest.mark.parametrize("obj", [[], "x", None, 1, ["state", "online"]])
def test_encode_needs_a_dict(obj: Any) -> None:
    with pytest.raises(SchemaError, match="object"):
        messages.encode("status", obj)


# -- fields --


@pytest.mark.parametrize(
    ("kind", "name"),
    [(kind, name) for kind in messages.KINDS for name in messages.SCHEMAS[kind]["required"]],
)
def test_every_required_field_is_required(kind: str, name: str) -> None:
    assert_rejected(kind, without(kind, name))


def test_error_messages_name_the_field() -> None:
    bad = with_("desired", price={"amount": 1, "currency": "inr"})
    with pytest.raises(SchemaError, match=r"desired\.price\.currency"):
        messages.encode("desired", bad)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("status", "boot"),
        ("status", "ts"),
        ("reported", "desired_version"),
        ("reported", "stock"),
        ("results", "dispensed"),
        ("desired", "version"),
        ("desired", "stock"),
        ("cmd", "quantity"),
        ("cmd", "issued_at"),
        ("cmd", "expires_at"),
        ("state", "stock"),
        ("state", "last_seen"),
        ("sales", "quantity"),
        ("sales", "amount"),
        ("telemetry", "ts"),
    ],
)
@pytest.mark.parametrize("value", [True, False, -1, 1.0, 2.5, "3", [3], {"n": 3}, 2**53])
def test_integers_are_real_non_negative_integers(kind: str, name: str, value: Any) -> None:
    assert_rejected(kind, with_(kind, **{name: value}))


def test_the_largest_integer_is_2_53_minus_1() -> None:
    assert_accepted("reported", with_("reported", desired_version=2**53 - 1))
    assert_accepted("reported", with_("reported", desired_version=0))


@pytest.mark.parametrize("kind", ["cmd", "sales"])
def test_quantity_is_at_least_one(kind: str) -> None:
    assert_rejected(kind, with_(kind, quantity=0))
    assert_accepted(kind, with_(kind, quantity=1))


@pytest.mark.parametrize(
    ("kind", "name", "good", "bad"),
    [
        ("status", "state", ["online", "lost"], ["offline", "Online", "", 1, None]),
        (
            "reported",
            "mode",
            ["idle", "locked", "dispensing", "error", "out_of_service"],
            ["in_service", "busy", "IDLE", None, True],
        ),
        (
            "events",
            "type",
            ["error", "jam", "door_open", "door_closed", "restocked"],
            ["door", "warning", None],
        ),
        (
            "results",
            "status",
            ["accepted", "running", "succeeded", "failed", "rejected", "expired", "unknown"],
            ["done", "ok", "", None, 0],
        ),
        ("desired", "mode", ["in_service", "out_of_service"], ["idle", "locked", None]),
        ("cmd", "action", ["dispense"], ["refund", "Dispense", None]),
        ("server_status", "state", ["online"], ["lost", "down", None]),
    ],
)
def test_enumerations(kind: str, name: str, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        assert_accepted(kind, with_(kind, **{name: value}))
    for value in bad:
        assert_rejected(kind, with_(kind, **{name: value}))


@pytest.mark.parametrize("kind", ["results", "cmd"])
@pytest.mark.parametrize(
    "cmd_id", ["", "a/b", "+", "#", "a b", "c\u00e9", "x" * 65, 7, None, "a\n", "$SYS"]
)
def test_cmd_ids_follow_the_topic_rules(kind: str, cmd_id: Any) -> None:
    assert_rejected(kind, with_(kind, cmd_id=cmd_id))


@pytest.mark.parametrize("kind", ["results", "cmd"])
def test_longest_and_shortest_cmd_ids(kind: str) -> None:
    assert_accepted(kind, with_(kind, cmd_id="A_z-9" * 12 + "abcd"))
    assert_accepted(kind, with_(kind, cmd_id="x"))


@pytest.mark.parametrize(
    ("kind", "name", "limit", "empty_ok"),
    [
        ("status", "fw", 32, False),
        ("events", "code", 128, False),
        ("events", "detail", 512, True),
        ("results", "error", 512, True),
        ("cmd", "order", 128, False),
        ("state", "mode", 32, False),
        ("sales", "order", 128, False),
    ],
)
def test_string_limits(kind: str, name: str, limit: int, empty_ok: bool) -> None:
    assert_accepted(kind, with_(kind, **{name: "\u20b9" * limit}))
    assert_rejected(kind, with_(kind, **{name: "a" * (limit + 1)}))
    assert_rejected(kind, with_(kind, **{name: 5}))
    assert_rejected(kind, with_(kind, **{name: None}))
    if empty_ok:
        assert_accepted(kind, with_(kind, **{name: ""}))
    else:
        assert_rejected(kind, with_(kind, **{name: ""}))


def test_lock_session_limit() -> None:
    lock = {"session": "s" * 128, "expires_at": T}
    assert_accepted("desired", with_("desired", display=None, lock=lock))
    assert_rejected("desired", with_("desired", display=None, lock=lock | {"session": "s" * 129}))
    assert_rejected("desired", with_("desired", display=None, lock=lock | {"session": ""}))


# -- per-kind rules --


def test_status_online_needs_fw_and_ts_but_the_will_does_not() -> None:
    assert_rejected("status", without("status", "fw"))
    assert_rejected("status", without("status", "ts"))
    assert_accepted("status", {"state": "lost", "boot": 3})
    assert_accepted("status", {"state": "lost", "boot": 3, "fw": "1.0.0", "ts": T})


def test_server_status_online_needs_ts_offline_does_not() -> None:
    assert_rejected("server_status", {"state": "online"})
    assert_accepted("server_status", {"state": "offline"})
    assert_accepted("server_status", {"state": "offline", "ts": T})


def test_reported_stock_may_be_unknown() -> None:
    assert_accepted("reported", with_("reported", stock=None))


def test_results_error_is_optional_text() -> None:
    assert_accepted("results", with_("results", status="failed", error="motor_stall"))
    assert_rejected("results", with_("results", error=None))


@pytest.mark.parametrize(
    "code", ["12345", "1234567", "12345a", "\u0661\u0662\u0663\u0664\u0665\u0666", 123456, ""]
)
def test_display_code_is_exactly_six_ascii_digits(code: Any) -> None:
    assert_rejected("desired", with_("desired", display={"code": code, "expires_at": T}))


@pytest.mark.parametrize("display", ["482913", [], {"code": "482913"}, {"expires_at": T}, True])
def test_display_is_an_object_or_null(display: Any) -> None:
    assert_rejected("desired", with_("desired", display=display))


def test_display_is_null_while_locked() -> None:
    lock = {"session": "ses_1", "expires_at": T + 300}
    assert_rejected("desired", with_("desired", lock=lock))
    assert_accepted("desired", with_("desired", display=None, lock=lock))
    assert_accepted("desired", with_("desired", display=None, lock=None))
    assert_rejected("desired", with_("desired", display=None, lock={"session": "s"}))


@pytest.mark.parametrize("kind", ["desired", "state"])
@pytest.mark.parametrize(
    "price",
    [
        {"amount": -1, "currency": "INR"},
        {"amount": True, "currency": "INR"},
        {"amount": 10, "currency": "inr"},
        {"amount": 10, "currency": "IN"},
        {"amount": 10, "currency": "INRS"},
        {"amount": 10, "currency": "\u0130NR"},
        {"amount": 10},
        {"currency": "INR"},
        None,
        2500,
    ],
)
def test_price(kind: str, price: Any) -> None:
    assert_rejected(kind, with_(kind, price=price))


def test_sales_currency() -> None:
    assert_accepted("sales", with_("sales", currency="USD", amount=0))
    assert_rejected("sales", with_("sales", currency="usd"))


@pytest.mark.parametrize("name", ["online", "busy"])
@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_state_flags_are_booleans(name: str, value: Any) -> None:
    assert_rejected("state", with_("state", **{name: value}))


def test_state_last_seen_may_be_null() -> None:
    assert_accepted("state", with_("state", last_seen=None, online=False))


# -- unknown fields --


def test_decode_drops_unknown_fields_at_every_level() -> None:
    wire = with_("desired", extra=1)
    wire["price"] = PRICE | {"tax": 18}
    wire["display"] = {"code": "012345", "expires_at": T + 600, "font": "big"}
    assert messages.decode("desired", raw(wire)) == VALID["desired"]


def test_encode_rejects_unknown_fields_at_every_level() -> None:
    with pytest.raises(SchemaError, match="unknown field"):
        messages.encode("status", with_("status", extra=1))
    with pytest.raises(SchemaError, match="unknown field"):
        messages.encode("state", with_("state", price=PRICE | {"tax": 18}))
    with pytest.raises(SchemaError, match="unknown field"):
        messages.encode("sales", {**VALID["sales"], 1: "x"})  # type: ignore[dict-item]


# -- telemetry --


def test_telemetry_keeps_every_number() -> None:
    obj = {"ts": T, "rssi": -70, "temp_c": -3.25, "big": 10**30, "z": 0, "\u00fc": 1e-9}
    assert_accepted("telemetry", obj)
    assert messages.decode("telemetry", raw(obj)) == obj


def test_payloads_are_the_same_bytes_whatever_the_dict_order() -> None:
    """Fields in table order, telemetry's own keys sorted: MicroPython's dicts do not
    keep insertion order, and a machine's payload must not depend on it."""
    shuffled = {"temp_c": 1.5, "ts": T, "a": 2, "uptime_s": 3}
    assert messages.encode("telemetry", shuffled) == (
        b'{"ts":%d,"a":2,"temp_c":1.5,"uptime_s":3}' % T
    )
    result = {"ts": T, "error": "jam", "dispensed": 1, "status": "failed", "cmd_id": "c"}
    assert messages.encode("results", result) == (
        b'{"cmd_id":"c","status":"failed","dispensed":1,"error":"jam","ts":%d}' % T
    )
    assert messages.encode("events", {**VALID["events"], "detail": "\u00e9\b\x01"}).endswith(
        b'"detail":"\xc3\xa9\\b\\u0001","ts":%d}' % T
    )


@pytest.mark.parametrize("value", [True, None, "1", [1], {"v": 1}])
def test_telemetry_values_are_numbers(value: Any) -> None:
    assert_rejected("telemetry", with_("telemetry", x=value))


@pytest.mark.parametrize("text", [b"NaN", b"Infinity", b"-Infinity"])
def test_telemetry_refuses_non_finite_numbers(text: bytes) -> None:
    with pytest.raises(SchemaError):
        messages.decode("telemetry", b'{"ts":1,"x":' + text + b"}")
    with pytest.raises(SchemaError):
        messages.encode("telemetry", {"ts": 1, "x": float(text.decode())})


def test_telemetry_key_count_and_length() -> None:
    most = {"ts": T} | {f"k{i}": i for i in range(31)}
    assert_accepted("telemetry", most)
    assert_rejected("telemetry", most | {"one_more": 1})
    assert_accepted("telemetry", {"ts": T, "k" * 32: 1})
    assert_rejected("telemetry", {"ts": T, "k" * 33: 1})
    assert_rejected("telemetry", {"ts": T, "": 1})


def test_telemetry_ts_is_still_a_time() -> None:
    assert_rejected("telemetry", {"ts": 1.5})
    assert_rejected("telemetry", {"ts": -1})
    assert_rejected("telemetry", {"rssi": -70})


# -- constructors --


def test_constructors() -> None:
    assert messages.decode("status", messages.status_online(4, "1.2.3", T)) == {
        "state": "online",
        "boot": 4,
        "fw": "1.2.3",
        "ts": T,
    }
    assert messages.status_lost(4) == b'{"state":"lost","boot":4}'
    assert messages.server_online(T) == b'{"state":"online","ts":%d}' % T
    assert messages.server_offline() == b'{"state":"offline"}'
    assert messages.server_offline(T) == b'{"state":"offline","ts":%d}' % T
    assert messages.CLEAR == b""
    with pytest.raises(SchemaError):
        messages.status_lost(-1)
    with pytest.raises(SchemaError):
        messages.status_online(1, "", T)

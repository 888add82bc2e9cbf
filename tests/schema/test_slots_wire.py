"""Several products per machine on the wire: slots, lines, and the 16 KiB limit."""

import json
from typing import Any

import jsonschema_rs
import pytest

from schema import messages, wire
from schema.errors import SchemaError
from tests.schema.test_messages_rules import VALID, assert_accepted, assert_rejected, raw, with_

T = 1767225600
PRICE = {"amount": 2000, "currency": "INR"}
SLOT = {"id": "A1", "motor": 0, "name": "Cola 330 ml", "price": PRICE, "stock": 7, "enabled": True}
LINES = [{"slot": "A1", "motor": 0, "quantity": 2}, {"slot": "B3", "motor": 5, "quantity": 1}]
BROKER_LIMIT = 16 * 1024  # MQTT_MAX_PAYLOAD's default: the broker drops anything larger


def slot(**changes: Any) -> dict[str, Any]:
    return {**SLOT, **changes}


def test_v1_payloads_stay_valid_and_byte_identical() -> None:
    for kind in ("desired", "cmd", "results", "reported", "state", "sales"):
        assert messages.encode(kind, VALID[kind]) == raw(VALID[kind])


def test_desired_slots_in_display_order() -> None:
    slots = [slot(id="B2", motor=3), slot(), slot(id="C10", motor=9, enabled=False, stock=0)]
    obj = with_("desired", slots=slots)
    assert_accepted("desired", obj)
    assert [
        s["id"] for s in messages.decode("desired", messages.encode("desired", obj))["slots"]
    ] == [
        "B2",
        "A1",
        "C10",
    ]
    payload = messages.encode("desired", with_("desired", slots=[SLOT]))
    assert payload.endswith(
        b',"slots":[{"id":"A1","motor":0,"name":"Cola 330 ml",'
        b'"price":{"amount":2000,"currency":"INR"},"stock":7,"enabled":true}]}'
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "a1"},
        {"id": ""},
        {"id": "A1234"},
        {"id": "A-1"},
        {"motor": -1},
        {"motor": 100},
        {"motor": True},
        {"name": ""},
        {"name": "x" * 41},
        {"name": "Cola\n"},
        {"name": "Cola\x7f"},
        {"name": "Cola \U0001f964"},  # beyond the BMP: 4 bytes in UTF-8
        {"price": {"amount": -1, "currency": "INR"}},
        {"stock": -1},
        {"stock": None},
        {"enabled": 1},
    ],
)
def test_bad_slots_are_refused(bad: dict[str, Any]) -> None:
    assert_rejected("desired", with_("desired", slots=[slot(**bad)]))


def test_slot_list_length_is_1_to_60() -> None:
    assert_rejected("desired", with_("desired", slots=[]))
    assert_rejected("desired", with_("desired", slots=[slot(id=f"S{i}") for i in range(61)]))
    assert_accepted("desired", with_("desired", slots=[slot(id=f"S{i}") for i in range(60)]))
    assert_rejected("desired", with_("desired", slots=SLOT))


def test_names_may_be_any_text_of_the_bmp() -> None:
    for name in ("Chips ₹20 पैक", "Café au lait", "x" * 40, 'Say "hi" \\ back'):
        assert_accepted("desired", with_("desired", slots=[slot(name=name)]))


def test_cmd_lines_and_results_lines() -> None:
    cmd = with_("cmd", quantity=3, lines=LINES)
    assert_accepted("cmd", cmd)
    assert messages.encode("cmd", cmd).endswith(
        b',"lines":[{"slot":"A1","motor":0,"quantity":2},{"slot":"B3","motor":5,"quantity":1}]}'
    )
    for bad in ([], [{"slot": "A1", "motor": 0, "quantity": 0}], [{"slot": "A1", "motor": 0}]):
        assert_rejected("cmd", with_("cmd", lines=bad))
    result = with_(
        "results",
        status="failed",
        dispensed=2,
        error="jam",
        lines=[{"slot": "A1", "dispensed": 2}, {"slot": "B3", "dispensed": 0}],
    )
    assert_accepted("results", result)
    assert_rejected("results", with_("results", lines=[{"slot": "A1"}]))
    assert_rejected("results", with_("results", lines=[{"slot": "A1", "dispensed": -1}]))


def test_reported_state_and_sales_slots() -> None:
    assert_accepted("reported", with_("reported", slots=[{"id": "A1", "stock": 3}]))
    assert_rejected("reported", with_("reported", slots=[{"id": "A1", "stock": None}]))
    state_slot = {"id": "A1", "name": "Cola", "price": PRICE, "stock": 0, "enabled": True}
    assert_accepted("state", with_("state", slots=[state_slot]))
    line = {"slot": "A1", "product": "prd_cola", "quantity": 2, "unit_amount": 2000, "amount": 4000}
    assert_accepted("sales", with_("sales", lines=[line]))
    assert_rejected("sales", with_("sales", lines=[{**line, "product": ""}]))


def test_unknown_fields_are_ignored_inside_slots_and_lines() -> None:
    obj = with_("desired", slots=[{**SLOT, "capacity": 12, "par": 10, "image_url": "/x.png"}])
    assert messages.decode("desired", raw(obj))["slots"] == [SLOT]
    cmd = with_("cmd", quantity=3, lines=[{**LINES[0], "product": "p1"}, LINES[1]])
    assert messages.decode("cmd", raw(cmd))["lines"] == LINES


def test_the_json_schemas_describe_the_new_fields() -> None:
    schema = messages.SCHEMAS["desired"]["properties"]["slots"]
    assert schema["type"] == "array" and (schema["minItems"], schema["maxItems"]) == (1, 60)
    assert schema["items"]["required"] == ["id", "motor", "name", "price", "stock", "enabled"]
    assert schema["items"]["properties"]["id"]["pattern"] == "^[A-Z0-9]{1,4}$"
    validator = jsonschema_rs.Draft7Validator(messages.SCHEMAS["desired"])
    for name, ok in (("Cola", True), ("Cola\x01", False), ("\U0001f964", False), ("x" * 41, False)):
        assert validator.is_valid(with_("desired", slots=[slot(name=name)])) == ok, name


# -- the 16 KiB limit, proven on the largest payloads the field tables allow --

# The widest character a name may hold: 3 bytes in UTF-8 (nothing needs escaping wider).
WIDE = "\uffef"


def biggest_desired() -> dict[str, Any]:
    most = wire.MAX_INT
    return {
        "version": most,
        "mode": "out_of_service",
        "display": None,  # null whenever there is a lock
        "lock": {"session": "\x01" * 128, "expires_at": most},  # 6 bytes per escaped char
        "price": {"amount": most, "currency": "INR"},
        "stock": most,
        "slots": [
            {
                "id": f"Z{i:03d}",
                "motor": wire.MAX_MOTOR,
                "name": WIDE * 40,
                "price": {"amount": most, "currency": "INR"},
                "stock": most,
                "enabled": False,
            }
            for i in range(wire.MAX_SLOTS)
        ],
    }


def test_the_widest_name_character_costs_three_bytes() -> None:
    for ch in (WIDE, "\u20b9", "\ufffd", '"', "\\"):
        assert len(json.dumps(ch, ensure_ascii=False).encode()) - 2 <= 3
    assert_rejected("desired", with_("desired", slots=[slot(name="\U00010000")]))


def test_a_60_slot_desired_always_fits_the_broker() -> None:
    """Every field at its longest: 60 slots, 40-character names of 3-byte characters,
    the largest integers, the longest lock session of escaped characters."""
    payload = messages.encode("desired", biggest_desired())
    assert len(payload) <= BROKER_LIMIT, len(payload)
    assert wire.decode("desired", payload)["slots"][59]["name"] == WIDE * 40
    # A realistic big one (ASCII names of 40 characters) leaves most of the room.
    realistic = with_(
        "desired",
        slots=[slot(id=f"{'ABCDEF'[i // 10]}{i % 10}", motor=i, name="N" * 40) for i in range(60)],
    )
    assert len(messages.encode("desired", realistic)) < 10 * 1024


def test_a_60_line_command_and_its_results_fit() -> None:
    most = wire.MAX_INT
    lines = [{"slot": f"Z{i:03d}", "motor": wire.MAX_MOTOR, "quantity": most} for i in range(60)]
    cmd = with_("cmd", cmd_id="c" * 64, order="o" * 128, quantity=most, lines=lines)
    assert len(messages.encode("cmd", cmd)) <= BROKER_LIMIT
    counts = [{"slot": line["slot"], "dispensed": most} for line in lines]
    result = with_("results", cmd_id="c" * 64, error="\x01" * 512, dispensed=most, lines=counts)
    assert len(messages.encode("results", result)) <= BROKER_LIMIT


def test_payloads_over_the_limit_are_refused_both_ways() -> None:
    big = biggest_desired()
    big["slots"] = big["slots"] * 2  # 120 slots: refused for its length anyway
    with pytest.raises(SchemaError):
        messages.encode("desired", big)
    over = b'{"ts":1,"pad":"' + b"x" * BROKER_LIMIT + b'"}'
    with pytest.raises(SchemaError, match="too large"):
        wire.decode("telemetry", over)

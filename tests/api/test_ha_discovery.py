"""Home Assistant discovery configs, checked against what Home Assistant accepts."""

import json

import pytest

from api.clock import LocalCalendar
from api.services import ha_discovery
from api.services.ha_discovery import MachineView, SlotView
from api.views import daily_figures
from schema import messages, topics
from schema.errors import SchemaError
from tests.support.home_assistant import HomeAssistantModel, render, validation_errors

PREFIX = "homeassistant"
VERSION = "1.2.3"
ONE_SLOT = MachineView("vm-1", "Lobby", "Floor 2", "1.0.0", "INR", (SlotView("1", "Slot 1"),))
MANY_SLOTS = MachineView(
    "vm-2",
    "Canteen",
    None,
    None,
    "INR",
    (SlotView("A1", "A1 Cola"), SlotView("A2", "A2 Chips"), SlotView("B10", "B10 Water")),
)


def all_configs(*machines: MachineView) -> list[tuple[str, dict[str, object]]]:
    out = ha_discovery.server_configs(PREFIX, VERSION)
    for machine in machines:
        out += ha_discovery.machine_configs(PREFIX, machine, VERSION)
    return out


def test_every_config_is_valid_for_its_component() -> None:
    configs = all_configs(ONE_SLOT, MANY_SLOTS)
    for topic, config in configs:
        prefix, component, node, _object = topics.parse_discovery_config(topic)
        assert prefix == PREFIX and node
        assert validation_errors(component, config) == [], topic
        decoded = json.loads(ha_discovery.encode(config))
        assert decoded == config
        assert "command_topic" not in config  # read-only: nothing to command
    unique = [c["unique_id"] for _t, c in configs]
    assert len(unique) == len(set(unique))
    assert len({t for t, _c in configs}) == len(configs)


def test_the_schema_refuses_what_home_assistant_refuses() -> None:
    good = dict(ha_discovery.machine_configs(PREFIX, ONE_SLOT, VERSION))
    sales = good[topics.discovery_config(PREFIX, "sensor", "smartvend_vm-1", "sales_today")]
    assert validation_errors("sensor", {**sales, "state_class": "measurement"})
    assert validation_errors("sensor", {**sales, "unit_of_measurement": "rupees"})
    assert validation_errors("sensor", {k: v for k, v in sales.items() if k != "state_topic"})
    assert validation_errors("sensor", {**sales, "command_topic": "x"})
    assert validation_errors("sensor", {**sales, "entity_category": "config"})
    assert validation_errors("sensor", {**sales, "device": {"name": "no identifiers"}})
    vends = good[topics.discovery_config(PREFIX, "sensor", "smartvend_vm-1", "vends_today")]
    assert validation_errors(
        "sensor", {**vends, "last_reset_value_template": "{{ value_json.since }}"}
    )
    assert validation_errors("light", sales)


def test_devices_entities_and_the_server_as_via_device() -> None:
    ha = HomeAssistantModel(PREFIX)
    for topic, config in all_configs(ONE_SLOT, MANY_SLOTS):
        ha.discovery(topic, ha_discovery.encode(config))
    assert ha.errors == []
    assert set(ha.devices) == {("smartvend_server",), ("smartvend_vm-1",), ("smartvend_vm-2",)}
    server = ha.device("smartvend_server")
    assert server.info["sw_version"] == VERSION and "via_device" not in server.info
    lobby = ha.device("smartvend_vm-1")
    assert lobby.info["name"] == "Lobby" and lobby.info["sw_version"] == "1.0.0"
    assert lobby.info["via_device"] == "smartvend_server"
    assert lobby.info["suggested_area"] == "Floor 2"
    assert lobby.info["model"] == "Vending machine, 1 slot"
    assert set(lobby.entities) == {
        "smartvend_vm-1_" + key
        for key in (
            "online",
            "slot_1_stock",
            "slot_1_sold_out",
            "sales_today",
            "vends_today",
            "firmware",
        )
    }
    canteen = ha.device("smartvend_vm-2")
    assert "sw_version" not in canteen.info  # no firmware reported yet
    assert len(canteen.entities) == 4 + 2 * 3
    by_id = {e.unique_id: e.config for e in lobby.entities.values()}
    online = by_id["smartvend_vm-1_online"]
    assert online["device_class"] == "connectivity"
    sales = by_id["smartvend_vm-1_sales_today"]
    assert (sales["device_class"], sales["state_class"]) == ("monetary", "total")
    assert sales["unit_of_measurement"] == "INR"
    assert by_id["smartvend_vm-1_vends_today"]["state_class"] == "total_increasing"
    assert by_id["smartvend_vm-1_firmware"]["entity_category"] == "diagnostic"
    for config in by_id.values():
        assert config["availability"] == [
            {
                "topic": topics.SERVER_STATUS,
                "value_template": "{{ value_json.state }}",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ]


def state(stock: int, online: bool = True, slots: list[dict[str, object]] | None = None) -> bytes:
    obj: dict[str, object] = {
        "online": online,
        "mode": "idle",
        "stock": stock,
        "busy": False,
        "price": {"amount": 2500, "currency": "INR"},
        "last_seen": 1767225600,
    }
    if slots is not None:  # contract 5: state gains slots (unknown fields are ignored)
        obj["slots"] = slots
    return json.dumps(obj).encode()


def configs_by_id(machine: MachineView) -> dict[str, dict[str, object]]:
    return {str(c["unique_id"]): c for _t, c in ha_discovery.machine_configs(PREFIX, machine, "1")}


@pytest.mark.parametrize("stock", [0, 1, 17])
def test_stock_and_sold_out_templates_on_a_one_slot_machine(stock: int) -> None:
    by_id = configs_by_id(ONE_SLOT)
    stock_t = by_id["smartvend_vm-1_slot_1_stock"]["value_template"]
    sold_t = by_id["smartvend_vm-1_slot_1_sold_out"]["value_template"]
    assert isinstance(stock_t, str) and isinstance(sold_t, str)
    assert render(stock_t, state(stock)) == str(stock)
    assert render(sold_t, state(stock)) == ("ON" if stock == 0 else "OFF")
    online_t = by_id["smartvend_vm-1_online"]["value_template"]
    assert isinstance(online_t, str)
    assert render(online_t, state(stock, online=True)) == "ON"
    assert render(online_t, state(stock, online=False)) == "OFF"


def test_slot_templates_read_the_slot_list_when_there_is_one() -> None:
    by_id = configs_by_id(MANY_SLOTS)
    payload = state(
        9,
        slots=[
            {"id": "A1", "stock": 0, "enabled": True},
            {"id": "A2", "stock": 4, "enabled": True},
            {"id": "B10", "stock": 5, "enabled": True},
        ],
    )

    def shown(slot: str, what: str) -> str:
        key = f"smartvend_vm-2_slot_{slot.lower()}_{what}"
        return render(str(by_id[key]["value_template"]), payload)

    assert {s: (shown(s, "stock"), shown(s, "sold_out")) for s in ("A1", "A2", "B10")} == {
        "A1": ("0", "ON"),
        "A2": ("4", "OFF"),
        "B10": ("5", "OFF"),
    }


def test_daily_figures_templates() -> None:
    by_id = configs_by_id(ONE_SLOT)
    zone = LocalCalendar("Asia/Kolkata")
    day, since = daily_figures.local_day(1767225600, zone)  # 2026-01-01 05:30 IST
    assert (day, since) == ("2026-01-01", 1767205800)  # local midnight is 18:30 UTC the day before
    figures = messages.encode(
        "today",
        {
            "day": day,
            "since": since,
            "vends": 3,
            "amount": 7550,
            "currency": "INR",
            "fw": "1.0.0",
            "ts": 1767225600,
        },
    )
    sales = by_id["smartvend_vm-1_sales_today"]
    assert float(render(str(sales["value_template"]), figures)) == 75.5
    assert render(str(sales["last_reset_value_template"]), figures) == "2025-12-31T18:30:00+00:00"
    assert render(str(by_id["smartvend_vm-1_vends_today"]["value_template"]), figures) == "3"
    assert render(str(by_id["smartvend_vm-1_firmware"]["value_template"]), figures) == "1.0.0"
    unknown = figures.replace(b'"fw":"1.0.0"', b'"fw":null')
    assert render(str(by_id["smartvend_vm-1_firmware"]["value_template"]), unknown) == "None"


def test_local_day_follows_the_zone() -> None:
    utc = LocalCalendar("UTC")
    assert daily_figures.local_day(1767225600, utc) == ("2026-01-01", 1767225600)
    assert daily_figures.local_day(1767225599, utc) == ("2025-12-31", 1767139200)
    kolkata = LocalCalendar("Asia/Kolkata")
    assert daily_figures.local_day(1767205799, kolkata) == ("2025-12-31", 1767119400)


def test_removal_clears_every_config_topic_of_the_machine() -> None:
    slots = [slot.id for slot in MANY_SLOTS.slots]
    cleared = ha_discovery.removal_topics(PREFIX, "vm-2", slots)
    published = [t for t, _c in ha_discovery.machine_configs(PREFIX, MANY_SLOTS, VERSION)]
    assert cleared == published
    ha = HomeAssistantModel(PREFIX)
    for topic, config in all_configs(ONE_SLOT, MANY_SLOTS):
        ha.discovery(topic, ha_discovery.encode(config))
    for topic in cleared:
        ha.discovery(topic, b"")
    assert set(ha.devices) == {("smartvend_server",), ("smartvend_vm-1",)}


def test_the_one_slot_function_gives_slot_1() -> None:
    from schema.models import Machine

    machine = Machine(id="vm-9", name="Gate", currency="INR", fw=None, location=None)
    assert ha_discovery.slots_of(machine) == [SlotView("1", "Slot 1")]
    assert ha_discovery.view_of(machine).slots == (SlotView("1", "Slot 1"),)


def test_discovery_topics_are_built_and_parsed_in_one_place() -> None:
    topic = topics.discovery_config("ha", "sensor", "smartvend_vm-1", "vends_today")
    assert topic == "ha/sensor/smartvend_vm-1/vends_today/config"
    assert topics.parse_discovery_config(topic) == ("ha", "sensor", "smartvend_vm-1", "vends_today")
    assert topics.parse_discovery_config("ha/sensor/x/config") == ("ha", "sensor", "", "x")
    assert topics.discovery_status("ha") == "ha/status"
    assert topics.discovery_filter("ha") == "ha/#"
    for bad in ("", "a/b", "smartvend", "x+", "#", "$SYS", "a b"):
        assert not topics.is_discovery_prefix(bad)
    for bad_topic in (
        "ha/sensor/config",
        "ha/sensor/a/b/c/config",
        "smartvend/sensor/a/config",
        "ha/sensor/a/b/state",
        "ha/sensor/a+/b/config",
    ):
        with pytest.raises(SchemaError):
            topics.parse_discovery_config(bad_topic)
    with pytest.raises(SchemaError, match="component"):
        topics.discovery_config("ha", "switch", "n", "o")

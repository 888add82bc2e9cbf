"""Home Assistant MQTT discovery configs for the fleet: pure functions, no I/O.

Each machine is one Home Assistant device (``smartvend_{mid}``), reached through
the SmartVend server, itself a device (``smartvend_server``). Every entity reads a
retained topic the server keeps current: the machine's ``state`` (online, stock
per slot) and ``today`` (sales and vends of the local day, firmware). Every entity
is available while ``server/status`` says ``online``. There is no command topic:
Home Assistant can read, never vend.

Configs are retained at ``{prefix}/{component}/{node_id}/{object_id}/config``
(:func:`schema.topics.discovery_config`); an empty retained payload removes one
(:func:`removal_topics`). The slots come from :func:`slots_of`, the one place
that knows what a machine's slots are.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schema import topics
from schema.models import Machine

SERVER_NODE = "smartvend_server"
MANUFACTURER = "SmartVend"
MINOR_UNITS = 100  # paise per rupee: amounts on the wire are in the smallest unit

Config = dict[str, Any]

AVAILABILITY: list[dict[str, str]] = [
    {
        "topic": topics.SERVER_STATUS,
        "value_template": "{{ value_json.state }}",
        "payload_available": "online",
        "payload_not_available": "offline",
    }
]


@dataclass(frozen=True)
class SlotView:
    """A slot as Home Assistant shows it: its shopper-facing id and a label."""

    id: str
    name: str


@dataclass(frozen=True)
class MachineView:
    """What discovery needs to know about one machine."""

    id: str
    name: str
    location: str | None
    fw: str | None
    currency: str
    slots: tuple[SlotView, ...]


def slots_of(machine: Machine) -> list[SlotView]:
    """The machine's slots, in display order. A one-product machine has one slot ``1``."""
    return [SlotView("1", "Slot 1")]


def view_of(machine: Machine) -> MachineView:
    return MachineView(
        id=machine.id,
        name=machine.name,
        location=machine.location,
        fw=machine.fw,
        currency=machine.currency,
        slots=tuple(slots_of(machine)),
    )


def node_id(machine_id: str) -> str:
    return "smartvend_" + machine_id


def _slot_key(slot_id: str) -> str:
    return "slot_" + slot_id.lower()


def _stock_of(slot_id: str) -> str:
    """A Jinja expression: the slot's stock from ``state`` (its ``slots`` list when the
    machine has one, else the machine's ``stock``, which is its only slot's)."""
    return (
        "(value_json.slots | default([]) | selectattr('id', 'eq', '"
        + slot_id
        + "') | map(attribute='stock') | first) | default(value_json.stock)"
    )


def origin(version: str) -> dict[str, str]:
    return {"name": "SmartVend", "sw_version": version}


def server_device(version: str) -> dict[str, Any]:
    return {
        "identifiers": [SERVER_NODE],
        "name": "SmartVend server",
        "manufacturer": MANUFACTURER,
        "model": "SmartVend server",
        "sw_version": version,
    }


def machine_device(machine: MachineView) -> dict[str, Any]:
    slots = len(machine.slots)
    device: dict[str, Any] = {
        "identifiers": [node_id(machine.id)],
        "name": machine.name,
        "manufacturer": MANUFACTURER,
        "model": f"Vending machine, {slots} slot{'s' if slots != 1 else ''}",
        "via_device": SERVER_NODE,
    }
    if machine.fw:
        device["sw_version"] = machine.fw
    if machine.location:
        device["suggested_area"] = machine.location
    return device


def server_configs(prefix: str, version: str) -> list[tuple[str, Config]]:
    """The server's own device: one connectivity entity on ``server/status``."""
    config: Config = {
        "name": "Server",
        "unique_id": SERVER_NODE + "_status",
        "device_class": "connectivity",
        "state_topic": topics.SERVER_STATUS,
        "value_template": "{{ 'ON' if value_json.state == 'online' else 'OFF' }}",
        "payload_on": "ON",
        "payload_off": "OFF",
        "qos": 1,
        "device": server_device(version),
        "origin": origin(version),
    }
    return [(topics.discovery_config(prefix, "binary_sensor", SERVER_NODE, "status"), config)]


def _entity(
    machine: MachineView, version: str, key: str, name: str, state_topic: str, template: str
) -> Config:
    return {
        "name": name,
        "unique_id": f"{node_id(machine.id)}_{key}",
        "state_topic": state_topic,
        "value_template": template,
        "availability": AVAILABILITY,
        "qos": 1,
        "device": machine_device(machine),
        "origin": origin(version),
    }


def machine_configs(prefix: str, machine: MachineView, version: str) -> list[tuple[str, Config]]:
    """Every entity of one machine, as ``(config topic, config)``."""
    node = node_id(machine.id)
    state, today = topics.state(machine.id), topics.today(machine.id)
    out: list[tuple[str, Config]] = []

    def add(component: str, key: str, config: Config) -> None:
        out.append((topics.discovery_config(prefix, component, node, key), config))

    online = _entity(
        machine, version, "online", "Online", state, "{{ 'ON' if value_json.online else 'OFF' }}"
    )
    online.update(device_class="connectivity", payload_on="ON", payload_off="OFF")
    add("binary_sensor", "online", online)
    for slot in machine.slots:
        key = _slot_key(slot.id)
        stock = _entity(
            machine,
            version,
            key + "_stock",
            f"{slot.name} stock",
            state,
            "{{ " + _stock_of(slot.id) + " }}",
        )
        stock.update(state_class="measurement", icon="mdi:package-variant")
        add("sensor", key + "_stock", stock)
        sold_out = _entity(
            machine,
            version,
            key + "_sold_out",
            f"{slot.name} sold out",
            state,
            "{{ 'ON' if (" + _stock_of(slot.id) + ") | int(0) == 0 else 'OFF' }}",
        )
        sold_out.update(device_class="problem", payload_on="ON", payload_off="OFF")
        add("binary_sensor", key + "_sold_out", sold_out)
    sales = _entity(
        machine,
        version,
        "sales_today",
        "Sales today",
        today,
        "{{ value_json.amount / " + str(MINOR_UNITS) + " }}",
    )
    sales.update(
        device_class="monetary",
        state_class="total",
        unit_of_measurement=machine.currency,
        suggested_display_precision=2,
        last_reset_value_template=(
            "{{ value_json.since | timestamp_custom('%Y-%m-%dT%H:%M:%S+00:00', false) }}"
        ),
    )
    add("sensor", "sales_today", sales)
    vends = _entity(machine, version, "vends_today", "Vends today", today, "{{ value_json.vends }}")
    vends.update(state_class="total_increasing", icon="mdi:cart-check")
    add("sensor", "vends_today", vends)
    firmware = _entity(machine, version, "firmware", "Firmware", today, "{{ value_json.fw }}")
    firmware.update(entity_category="diagnostic", icon="mdi:chip")
    add("sensor", "firmware", firmware)
    return out


def removal_topics(prefix: str, machine_id: str, slot_ids: Sequence[str]) -> list[str]:
    """The config topics of a machine with these slots, to clear with empty payloads."""
    view = MachineView(
        machine_id, machine_id, None, None, "INR", tuple(SlotView(s, s) for s in slot_ids)
    )
    return [topic for topic, _config in machine_configs(prefix, view, "0")]


def encode(config: Config) -> bytes:
    return json.dumps(config, separators=(",", ":"), sort_keys=True).encode()

"""What Home Assistant does with MQTT discovery, written for tests from its documentation.

* :data:`SCHEMAS`: the discovery payload of each component SmartVend uses
  (``sensor``, ``binary_sensor``): the keys Home Assistant accepts (long names),
  their types, the required ones (``state_topic``; a device needs ``identifiers``
  or ``connections``), and the rules between them (``monetary`` only with
  ``state_class: total``; no ``last_reset`` with ``total_increasing``; a sensor is
  never in the ``config`` category). Unknown keys are refused.
* :class:`HomeAssistantModel`: the device and entity registries Home Assistant
  builds from retained configs (an empty payload removes an entity; a device
  without entities is gone), and each entity's state and availability, with its
  templates rendered by Jinja2 as Home Assistant renders them (``value``,
  ``value_json``, and its ``timestamp_custom`` filter).
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2
import jinja2.sandbox
import jsonschema_rs

_STRING = {"type": "string"}
_TEMPLATE = {"type": "string", "minLength": 1}
_TOPIC = {"type": "string", "minLength": 1, "not": {"pattern": "[+#]"}}
_QOS = {"type": "integer", "enum": [0, 1, 2]}

DEVICE = {
    "type": "object",
    "properties": {
        "configuration_url": _STRING,
        "connections": {
            "type": "array",
            "items": {"type": "array", "items": _STRING, "minItems": 2, "maxItems": 2},
        },
        "hw_version": _STRING,
        "identifiers": {
            "anyOf": [_STRING, {"type": "array", "items": _STRING, "minItems": 1}],
        },
        "manufacturer": _STRING,
        "model": _STRING,
        "model_id": _STRING,
        "name": _STRING,
        "serial_number": _STRING,
        "suggested_area": _STRING,
        "sw_version": _STRING,
        "via_device": _STRING,
    },
    "anyOf": [{"required": ["identifiers"]}, {"required": ["connections"]}],
    "additionalProperties": False,
}

ORIGIN = {
    "type": "object",
    "properties": {"name": _STRING, "sw_version": _STRING, "support_url": _STRING},
    "required": ["name"],
    "additionalProperties": False,
}

AVAILABILITY_ITEM = {
    "type": "object",
    "properties": {
        "topic": _TOPIC,
        "payload_available": _STRING,
        "payload_not_available": _STRING,
        "value_template": _TEMPLATE,
    },
    "required": ["topic"],
    "additionalProperties": False,
}

# Options every MQTT entity takes (the MQTT entity documentation's common ones).
_ENTITY = {
    "availability": {"type": "array", "items": AVAILABILITY_ITEM, "minItems": 1},
    "availability_mode": {"enum": ["all", "any", "latest"]},
    "availability_template": _TEMPLATE,
    "availability_topic": _TOPIC,
    "payload_available": _STRING,
    "payload_not_available": _STRING,
    "default_entity_id": _STRING,
    "device": DEVICE,
    "enabled_by_default": {"type": "boolean"},
    "encoding": _STRING,
    "entity_category": {"enum": ["config", "diagnostic"]},
    "entity_picture": _STRING,
    "expire_after": {"type": "integer", "minimum": 0},
    "force_update": {"type": "boolean"},
    "icon": {"type": "string", "pattern": "^[a-z0-9-]+:[a-z0-9-]+$"},
    "json_attributes_template": _TEMPLATE,
    "json_attributes_topic": _TOPIC,
    "name": {"type": ["string", "null"]},
    "object_id": _STRING,
    "origin": ORIGIN,
    "qos": _QOS,
    "state_topic": _TOPIC,
    "unique_id": {"type": "string", "minLength": 1},
    "value_template": _TEMPLATE,
}

SENSOR_DEVICE_CLASSES = [
    "apparent_power", "aqi", "area", "atmospheric_pressure", "battery",
    "blood_glucose_concentration",
    "carbon_dioxide", "carbon_monoxide", "current", "data_rate", "data_size", "date", "distance",
    "duration", "energy", "energy_distance", "energy_storage", "enum", "frequency", "gas",
    "humidity", "illuminance", "irradiance", "moisture", "monetary", "nitrogen_dioxide",
    "nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power",
    "power_factor", "precipitation", "precipitation_intensity", "pressure", "reactive_power",
    "signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature", "timestamp",
    "volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage", "volume",
    "volume_flow_rate", "volume_storage", "water", "weight", "wind_direction", "wind_speed",
]  # fmt: skip
BINARY_SENSOR_DEVICE_CLASSES = [
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
]  # fmt: skip

SENSOR = {
    "title": "sensor",
    "type": "object",
    "properties": {
        **_ENTITY,
        "device_class": {"enum": SENSOR_DEVICE_CLASSES},
        "last_reset_value_template": _TEMPLATE,
        "options": {"type": "array", "items": _STRING},
        "state_class": {"enum": ["measurement", "measurement_angle", "total", "total_increasing"]},
        "suggested_display_precision": {"type": "integer", "minimum": 0},
        "unit_of_measurement": {"type": ["string", "null"]},
    },
    "required": ["state_topic"],
    "additionalProperties": False,
    "allOf": [
        # A monetary sensor is a total (or has no state class); its unit is a currency code.
        {
            "if": {
                "properties": {"device_class": {"const": "monetary"}},
                "required": ["device_class"],
            },
            "then": {
                "properties": {
                    "state_class": {"const": "total"},
                    "unit_of_measurement": {"type": "string", "pattern": "^[A-Z]{3}$"},
                }
            },
        },
        # last_reset belongs to "total" sensors only.
        {
            "if": {"required": ["last_reset_value_template"]},
            "then": {
                "properties": {"state_class": {"const": "total"}},
                "required": ["state_class"],
            },
        },
        # Sensors cannot be configuration entities.
        {"properties": {"entity_category": {"const": "diagnostic"}}},
    ],
}

BINARY_SENSOR = {
    "title": "binary_sensor",
    "type": "object",
    "properties": {
        **_ENTITY,
        "device_class": {"enum": BINARY_SENSOR_DEVICE_CLASSES},
        "off_delay": {"type": "integer", "minimum": 0},
        "payload_off": _STRING,
        "payload_on": _STRING,
    },
    "required": ["state_topic"],
    "additionalProperties": False,
}

SCHEMAS: dict[str, dict[str, Any]] = {"sensor": SENSOR, "binary_sensor": BINARY_SENSOR}
VALIDATORS = {name: jsonschema_rs.Draft7Validator(schema) for name, schema in SCHEMAS.items()}
DEFAULT_AVAILABLE, DEFAULT_NOT_AVAILABLE = "online", "offline"
PAYLOAD_NONE = "None"  # a template rendering this sets the state to unknown


def validation_errors(component: str, config: dict[str, Any]) -> list[str]:
    validator = VALIDATORS.get(component)
    if validator is None:
        return [f"component {component} is not one SmartVend should publish"]
    return [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(config)]


def _timestamp_custom(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S", local: bool = True) -> str:
    moment = datetime.fromtimestamp(float(value), None if local else UTC)
    return moment.strftime(fmt)


_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.Undefined)
_ENV.filters["timestamp_custom"] = _timestamp_custom


def render(template: str | None, payload: bytes) -> str:
    """A value template applied to a payload: ``value`` and ``value_json`` as in HA."""
    text = payload.decode()
    if template is None:
        return text
    try:
        value_json: Any = json.loads(text)
    except ValueError:
        value_json = jinja2.Undefined(name="value_json")
    return _ENV.from_string(template).render(value=text, value_json=value_json).strip()


def parse_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """``(component, discovery id)`` of ``{prefix}/{component}/[{node}/]{object}/config``."""
    parts = topic.split("/")
    if parts[0] != prefix or parts[-1] != "config" or len(parts) not in (4, 5):
        return None
    return parts[1], "/".join(parts[2:-1])


@dataclass
class Entity:
    component: str
    config: dict[str, Any]
    state: str | None = None  # "on"/"off" for binary sensors, the rendered value for sensors
    last_reset: str | None = None
    available_by_topic: dict[str, bool] = field(default_factory=dict)

    @property
    def unique_id(self) -> str:
        return str(self.config["unique_id"])

    @property
    def device_key(self) -> tuple[str, ...]:
        ids = self.config["device"]["identifiers"]
        return tuple([ids] if isinstance(ids, str) else ids)

    @property
    def available(self) -> bool:
        if "availability" not in self.config:
            return True
        topics = [item["topic"] for item in self.config["availability"]]
        seen = [self.available_by_topic[t] for t in topics if t in self.available_by_topic]
        mode = self.config.get("availability_mode", "latest")
        if mode == "all":
            return len(seen) == len(topics) and all(seen)
        return any(seen) if mode == "any" else bool(seen) and seen[-1]

    def topics(self) -> set[str]:
        found = {self.config["state_topic"]}
        found |= {item["topic"] for item in self.config.get("availability", [])}
        return found

    def receive(self, topic: str, payload: bytes) -> None:
        for item in self.config.get("availability", []):
            if item["topic"] == topic:
                verdict = render(item.get("value_template"), payload)
                if verdict == item.get("payload_available", DEFAULT_AVAILABLE):
                    self.available_by_topic[topic] = True
                elif verdict == item.get("payload_not_available", DEFAULT_NOT_AVAILABLE):
                    self.available_by_topic[topic] = False
        if topic != self.config["state_topic"] or not payload:
            return
        value = render(self.config.get("value_template"), payload)
        if self.component == "binary_sensor":
            if value == self.config.get("payload_on", "ON"):
                self.state = "on"
            elif value == self.config.get("payload_off", "OFF"):
                self.state = "off"
            elif value == PAYLOAD_NONE:
                self.state = None
        else:
            self.state = None if value == PAYLOAD_NONE else value
            if "last_reset_value_template" in self.config:
                self.last_reset = render(self.config["last_reset_value_template"], payload)


@dataclass
class Device:
    identifiers: tuple[str, ...]
    info: dict[str, Any]
    entities: dict[str, Entity] = field(default_factory=dict)  # by unique_id

    @property
    def name(self) -> str:
        return str(self.info.get("name"))


class HomeAssistantModel:
    """Registries built from discovery messages, as Home Assistant builds them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.by_discovery_id: dict[tuple[str, str], Entity] = {}
        self.errors: list[str] = []
        self.retained: dict[str, bytes] = {}  # last payload of every state topic

    def discovery(self, topic: str, payload: bytes) -> Entity | None:
        """A config (or its removal); returns the entity whose topics to subscribe."""
        parsed = parse_topic(self.prefix, topic)
        if parsed is None:
            return None
        if not payload:
            self.by_discovery_id.pop(parsed, None)
            return None
        component = parsed[0]
        config = json.loads(payload)
        problems = validation_errors(component, config)
        if problems:
            self.errors.append(f"{topic}: {problems}")
            return None
        entity = Entity(component, config)
        old = self.by_discovery_id.get(parsed)
        if old is not None:  # an update keeps what is known of the state
            entity.state, entity.last_reset = old.state, old.last_reset
            entity.available_by_topic = old.available_by_topic
        self.by_discovery_id[parsed] = entity
        for state_topic in entity.topics():  # already-known retained values apply at once
            if state_topic in self.retained:
                entity.receive(state_topic, self.retained[state_topic])
        return entity

    def message(self, topic: str, payload: bytes) -> None:
        self.retained[topic] = payload
        for entity in self.by_discovery_id.values():
            entity.receive(topic, payload)

    @property
    def devices(self) -> dict[tuple[str, ...], Device]:
        found: dict[tuple[str, ...], Device] = {}
        for entity in self.by_discovery_id.values():
            key = entity.device_key
            device = found.setdefault(key, Device(key, {}))
            device.info.update(entity.config["device"])
            device.entities[entity.unique_id] = entity
        return found

    def device(self, identifier: str) -> Device:
        matches = [d for key, d in self.devices.items() if identifier in key]
        assert len(matches) == 1, (identifier, list(self.devices))
        return matches[0]

    def entity(self, unique_id: str) -> Entity:
        matches = [e for e in self.by_discovery_id.values() if e.unique_id == unique_id]
        assert len(matches) == 1, unique_id
        return matches[0]

"""docs/asyncapi.yaml must say what the wire contract modules do."""

import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from schema import messages, topics

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
# Retain flag and QoS of every topic, as the contract's tables give them.
DELIVERY = {
    "status": (True, 1),
    "reported": (True, 1),
    "telemetry": (False, 0),
    "events": (False, 1),
    "results": (False, 1),
    "desired": (True, 1),
    "cmd": (True, 1),
    "server_status": (True, 1),
    "state": (True, 1),
    "sales": (False, 1),
    "today": (True, 1),
}
SENT_BY_DEVICE = {"status", "reported", "telemetry", "events", "results"}
RECEIVED_BY_DEVICE = {"desired", "cmd", "server_status"}
# Machine access is narrower than this (own topics only), integrators see every machine.
RECEIVED_BY_INTEGRATOR = {
    "status",
    "state",
    "telemetry",
    "events",
    "sales",
    "today",
    "server_status",
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def resolve(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def address_for(kind: str) -> str:
    """The channel address of ``kind``, built by schema.topics with placeholders."""
    if kind == "server_status":
        return topics.SERVER_STATUS
    cmd_id = "CMDID" if kind in topics.ID_KINDS else None
    levels = topics.machine_topic("MACHINEID", kind, cmd_id).split("/")
    names = {"MACHINEID": "{machineId}", "CMDID": "{cmdId}"}
    return "/".join(names.get(level, level) for level in levels)


def test_document_header(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["defaultContentType"] == "application/json"
    server = doc["servers"]["broker"]
    assert server["protocol"] == "mqtt"
    assert server["protocolVersion"] == "3.1.1"
    assert resolve(doc, server["security"][0])["type"] == "userPassword"


def test_one_channel_per_kind_at_the_built_address(doc: dict[str, Any]) -> None:
    channels = doc["channels"]
    assert set(channels) == set(messages.KINDS)
    for kind, channel in channels.items():
        address = channel["address"]
        assert address == address_for(kind)
        placeholders = set(re.findall(r"\{(\w+)\}", address))
        assert set(channel.get("parameters", {})) == placeholders
        for name in placeholders:
            assert resolve(doc, channel["parameters"][name])["description"]
        assert list(channel["messages"]) == [kind]


def test_every_kind_has_a_message_with_the_module_schema(doc: dict[str, Any]) -> None:
    components = doc["components"]["messages"]
    assert set(components) == set(messages.KINDS)
    for kind in messages.KINDS:
        message = resolve(doc, doc["channels"][kind]["messages"][kind])
        assert message is components[kind]
        assert message["contentType"] == "application/json"
        payload = resolve(doc, message["payload"])
        assert payload == messages.SCHEMAS[kind], (
            f"components.schemas.{kind} in docs/asyncapi.yaml differs from "
            f"schema.messages.SCHEMAS[{kind!r}]; it should read:\n"
            + yaml.safe_dump(messages.SCHEMAS[kind], sort_keys=False)
        )


def test_examples_are_valid_payloads(doc: dict[str, Any]) -> None:
    for kind, message in doc["components"]["messages"].items():
        assert message["examples"], kind
        validator = jsonschema_rs.Draft7Validator(messages.SCHEMAS[kind])
        for example in message["examples"]:
            payload = example["payload"]
            assert messages.decode(kind, messages.encode(kind, payload)) == payload
            assert validator.is_valid(payload)


def test_operations_match_roles_and_delivery(doc: dict[str, Any]) -> None:
    seen: dict[tuple[str, str, str], str] = {}
    for op_id, op in doc["operations"].items():
        channel = resolve(doc, op["channel"])
        kind = next(k for k, c in doc["channels"].items() if c is channel)
        roles = [tag["name"] for tag in op["tags"]]
        assert len(roles) == 1, op_id
        seen[(roles[0], op["action"], kind)] = op_id
        retain, qos = DELIVERY[kind]
        binding = op["bindings"]["mqtt"]
        assert (binding["retain"], binding["qos"]) == (retain, qos), op_id
        assert binding["bindingVersion"] == "0.2.0"
        for ref in op["messages"]:
            assert ref["$ref"].startswith(f"#/channels/{kind}/messages/")
            assert resolve(doc, ref) is doc["components"]["messages"][kind]
    expected = (
        {("device", "send", k) for k in SENT_BY_DEVICE}
        | {("device", "receive", k) for k in RECEIVED_BY_DEVICE}
        | {("integrator", "receive", k) for k in RECEIVED_BY_INTEGRATOR}
    )
    assert set(seen) == expected


def test_channel_descriptions_state_retain_and_qos(doc: dict[str, Any]) -> None:
    for kind, channel in doc["channels"].items():
        retain, qos = DELIVERY[kind]
        assert f"Retained: {'yes' if retain else 'no'}. QoS {qos}." in channel["description"]


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert len(refs) > 30
    for ref in refs:
        assert resolve(doc, {"$ref": ref}) is not None, ref

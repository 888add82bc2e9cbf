"""docs/asyncapi.yaml must say what the wire contract modules do."""

import os
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from schema import messages, topics, wire
from schema.updates import SPECS as UPDATE_SPECS

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


# Every message: the kinds with a topic of their own, then the update kinds sharing one.
ALL_SCHEMAS = {**messages.SCHEMAS, **messages.UPDATE_SCHEMAS}
ALL_SPECS = {**messages.SPECS, **UPDATE_SPECS}


def on_topic(kind: str) -> list[str]:
    """The messages of ``kind``'s topic: its own, then the update kinds that share it."""
    shared = [k for k, topic in messages.UPDATE_TOPIC_KINDS.items() if topic == kind]
    return [kind, *shared]


class _Dumper(yaml.SafeDumper):
    """Multi-line texts as literal blocks, the way the document is written."""


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)


def generated(text: str) -> str:
    """The document with its payload schemas built from the wire's field tables
    (``schema.messages.SCHEMAS`` and ``UPDATE_SCHEMAS``); the rest is kept as written."""
    lines = text.splitlines(keepends=True)
    header = "".join(line for line in lines[:3] if line.startswith("#"))
    loaded = yaml.safe_load(text)
    loaded["components"]["schemas"] = ALL_SCHEMAS
    body = yaml.dump(loaded, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_schemas_are_generated() -> None:
    text = DOC_PATH.read_text(encoding="utf-8")
    if os.environ.get("SMARTVEND_WRITE_DOCS") == "1":
        DOC_PATH.write_text(generated(text), encoding="utf-8")
        text = DOC_PATH.read_text(encoding="utf-8")
    assert text == generated(text), "run with SMARTVEND_WRITE_DOCS=1 to refresh docs/asyncapi.yaml"


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
        assert list(channel["messages"]) == on_topic(kind)


def test_every_kind_has_a_message_with_the_module_schema(doc: dict[str, Any]) -> None:
    components = doc["components"]["messages"]
    assert set(components) == set(ALL_SCHEMAS)
    for topic_kind in messages.KINDS:
        for kind in on_topic(topic_kind):
            message = resolve(doc, doc["channels"][topic_kind]["messages"][kind])
            assert message is components[kind]
            assert message["contentType"] == "application/json"
            payload = resolve(doc, message["payload"])
            assert payload == ALL_SCHEMAS[kind], (
                f"components.schemas.{kind} in docs/asyncapi.yaml differs from the schema "
                "built from its field table; run with SMARTVEND_WRITE_DOCS=1"
            )


def test_the_update_command_and_its_progress_are_documented(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert schemas["update"]["properties"]["action"]["enum"] == ["update"]
    progress = schemas["update_result"]["properties"]["progress"]
    assert progress["properties"]["stage"]["enum"] == ["download", "verify", "install"]
    assert set(progress["required"]) == {"stage", "bytes", "total"}


def test_examples_are_valid_payloads(doc: dict[str, Any]) -> None:
    for kind, message in doc["components"]["messages"].items():
        assert message["examples"], kind
        validator = jsonschema_rs.Draft7Validator(ALL_SCHEMAS[kind])
        for example in message["examples"]:
            payload = example["payload"]
            encoded = wire.encode_in(ALL_SPECS, kind, payload)
            assert wire.decode_in(ALL_SPECS, kind, encoded) == payload
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
            assert resolve(doc, ref) in [doc["components"]["messages"][k] for k in on_topic(kind)]
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

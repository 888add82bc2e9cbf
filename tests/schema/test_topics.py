"""The topic builders and parser of schema.topics."""

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from schema import topics
from schema.errors import SchemaError

mids = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)
cmd_ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
kinds = st.sampled_from(topics.MACHINE_KINDS)


def build(kind: str, mid: str, cmd_id: str) -> tuple[str, str | None]:
    if kind in topics.ID_KINDS:
        return topics.machine_topic(mid, kind, cmd_id), cmd_id
    return topics.machine_topic(mid, kind), None


def test_literal_topics() -> None:
    m = "smartvend/v1/machines/vm-1/"
    assert topics.status("vm-1") == m + "status"
    assert topics.reported("vm-1") == m + "reported"
    assert topics.telemetry("vm-1") == m + "telemetry"
    assert topics.events("vm-1") == m + "events"
    assert topics.result("vm-1", "c_1") == m + "results/c_1"
    assert topics.desired("vm-1") == m + "desired"
    assert topics.cmd("vm-1", "c_1") == m + "cmd/c_1"
    assert topics.state("vm-1") == m + "state"
    assert topics.sales("vm-1") == m + "sales"
    assert topics.today("vm-1") == m + "today"
    assert topics.SERVER_STATUS == "smartvend/v1/server/status"
    assert topics.ROOT == "smartvend/v1"


def test_kind_groups_cover_the_contract() -> None:
    assert topics.DEVICE_KINDS == ("status", "reported", "telemetry", "events", "results")
    assert topics.CLOUD_KINDS == ("desired", "cmd")
    assert topics.SERVER_KINDS == ("state", "sales", "today")
    assert topics.ID_KINDS == ("results", "cmd")


@given(kind=kinds, mid=mids, cmd_id=cmd_ids)
def test_every_built_topic_parses_back(kind: str, mid: str, cmd_id: str) -> None:
    topic, expected_id = build(kind, mid, cmd_id)
    assert not topic.startswith("$")
    assert topics.parse(topic) == (kind, mid, expected_id)


def test_server_status_parses() -> None:
    assert topics.parse(topics.SERVER_STATUS) == ("server_status", None, None)


@given(kind=kinds, other=kinds, mid=mids, cmd_id=cmd_ids)
def test_filters_match_exactly_their_kind(kind: str, other: str, mid: str, cmd_id: str) -> None:
    topic, _ = build(other, mid, cmd_id)
    assert topic_matches_sub(topics.machine_filter(kind), topic) == (kind == other)
    assert topic_matches_sub(topics.machine_filter(kind, mid), topic) == (kind == other)
    assert not topic_matches_sub(topics.machine_filter(kind), topics.SERVER_STATUS)


def test_filter_shapes() -> None:
    assert topics.machine_filter("state") == "smartvend/v1/machines/+/state"
    assert topics.machine_filter("cmd", "vm-1") == "smartvend/v1/machines/vm-1/cmd/+"
    assert topics.machine_filter("results") == "smartvend/v1/machines/+/results/+"
    assert topics.machine_topic("+", "cmd", "+") == "smartvend/v1/machines/+/cmd/+"
    with pytest.raises(SchemaError):
        topics.machine_filter("server_status")
    with pytest.raises(SchemaError):
        topics.machine_filter("state", "#")


@given(value=st.text(max_size=70) | st.none() | st.integers())
def test_id_predicates_match_the_contract_pattern(value: Any) -> None:
    as_text = value if isinstance(value, str) else None
    ok_mid = as_text is not None and re.fullmatch(r"[A-Za-z0-9_-]{1,32}", as_text) is not None
    ok_cmd = as_text is not None and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", as_text) is not None
    assert topics.is_machine_id(value) == ok_mid
    assert topics.is_cmd_id(value) == ok_cmd


BAD_IDS: list[Any] = ["", "a/b", "+x", "#", "a+", "$SYS", "a b", "caf\u00e9", "x\n", None, 5]


@pytest.mark.parametrize("mid", [*BAD_IDS, "x" * 33])
def test_builders_refuse_bad_machine_ids(mid: Any) -> None:
    for kind in topics.MACHINE_KINDS:
        with pytest.raises(SchemaError):
            topics.machine_topic(mid, kind, "c1" if kind in topics.ID_KINDS else None)


@pytest.mark.parametrize("cmd_id", [*BAD_IDS, "x" * 65])
def test_builders_refuse_bad_command_ids(cmd_id: Any) -> None:
    with pytest.raises(SchemaError):
        topics.cmd("vm1", cmd_id)
    with pytest.raises(SchemaError):
        topics.result("vm1", cmd_id)


def test_builders_refuse_wrong_shapes() -> None:
    with pytest.raises(SchemaError, match="needs a command id"):
        topics.machine_topic("vm1", "cmd")
    with pytest.raises(SchemaError, match="takes no command id"):
        topics.machine_topic("vm1", "status", "c1")
    with pytest.raises(SchemaError, match="unknown topic kind"):
        topics.machine_topic("vm1", "server_status")
    with pytest.raises(SchemaError, match="unknown topic kind"):
        topics.machine_topic("vm1", "Status")
    assert len(topics.status("x" * 32).split("/")) == 5
    assert topics.cmd("vm1", "c" * 64).endswith("c" * 64)


M = "smartvend/v1/machines/"


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "/",
        "smartvend",
        "smartvend/v1",
        "smartvend/v1/machines",
        M,
        M + "vm1",
        M + "vm1/",
        M + "vm1/status/",
        M + "vm1/status/extra",
        M + "/status",
        M + "vm1//status",
        M + "+/status",
        M + "#",
        M + "vm1/#",
        M + "vm1/cmd",
        M + "vm1/cmd/",
        M + "vm1/cmd/+",
        M + "vm1/cmd/a/b",
        M + "vm1/results/" + "x" * 65,
        M + "x" * 33 + "/status",
        M + "vm1/unknown",
        M + "vm1/server_status",
        M + "vm 1/status",
        "/" + M + "vm1/status",
        "Smartvend/v1/machines/vm1/status",
        "smartvend/v2/machines/vm1/status",
        "$SYS/broker/uptime",
        "smartvend/v1/server/status/x",
        "smartvend/v1/server",
        "smartvend/v1/server/state",
        None,
        b"smartvend/v1/server/status",
        42,
    ],
)
def test_parse_refuses_everything_else(topic: Any) -> None:
    with pytest.raises(SchemaError):
        topics.parse(topic)


@given(topic=st.text(max_size=80) | st.from_regex(r"smartvend/v1/machines/[a-z0-9/+#_-]{0,40}"))
def test_parse_only_raises_schema_error_and_round_trips(topic: str) -> None:
    try:
        kind, mid, cmd_id = topics.parse(topic)
    except SchemaError:
        return
    if kind == "server_status":
        assert topic == topics.SERVER_STATUS
    else:
        assert mid is not None
        assert topics.machine_topic(mid, kind, cmd_id) == topic

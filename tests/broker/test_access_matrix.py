"""CONTRACT section 1 "Credentials and access", on the embedded broker and on Mosquitto.

Every role x every topic kind (its own machine's, another machine's, the server's,
Home Assistant's discovery prefix and another prefix) x publish / subscribe /
receive, live and retained. A refusal is proven with a
sentinel: the forbidden messages go first, an allowed sentinel last on the same
ordered path, and once the sentinel arrives the forbidden ones must be absent.
The expectations are written out here, independently of ``broker.acl``.
"""

import aiomqtt
import pytest
from paho.mqtt.client import topic_matches_sub

from broker import acl
from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client, granted, messages_until

OWNERS = ("A", "B")
KINDS = (
    "status",
    "reported",
    "telemetry",
    "events",
    "results",
    "desired",
    "cmd",
    "state",
    "sales",
    "today",
)
SERVER = ("server", "server_status")
# Home Assistant's birth topic and a discovery config under its (default) prefix, and a
# config under a prefix nobody reads.
HA_STATUS = ("ha", "status")
HA_CONFIG = ("ha", "config")
OTHER_CONFIG = ("other", "config")
HA_TOPICS = {
    HA_STATUS: "homeassistant/status",
    HA_CONFIG: "homeassistant/sensor/smartvend_A/vends_today/config",
    OTHER_CONFIG: "elsewhere/sensor/smartvend_A/vends_today/config",
}
CASES = [(owner, kind) for owner in OWNERS for kind in KINDS] + [*HA_TOPICS, SERVER]
ACTORS = ("A", "B", "acme", "hass", "srv")


def topic_of(case: tuple[str, str]) -> str:
    owner, kind = case
    if case == SERVER:
        return topics.SERVER_STATUS
    if case in HA_TOPICS:
        return HA_TOPICS[case]
    if kind in ("results", "cmd"):
        return topics.machine_topic(owner, kind, "c-1")
    return topics.machine_topic(owner, kind)


def machine_can_publish(mid: str) -> set[tuple[str, str]]:
    return {(mid, k) for k in ("status", "reported", "telemetry", "events", "results")}


def machine_can_receive(mid: str) -> set[tuple[str, str]]:
    return {(mid, "desired"), (mid, "cmd"), SERVER}


INTEGRATOR_RECEIVES = {
    (owner, kind)
    for owner in OWNERS
    for kind in ("status", "state", "telemetry", "events", "sales", "today")
} | {SERVER}
HOME_ASSISTANT_RECEIVES = {(owner, kind) for owner in OWNERS for kind in ("state", "today")} | {
    SERVER,
    HA_STATUS,
    HA_CONFIG,
}

EXPECTED_PUBLISH = {
    "A": machine_can_publish("A"),
    "B": machine_can_publish("B"),
    "acme": set(),
    "hass": {HA_STATUS},  # its birth and will; never a machine's topic
    "srv": set(CASES),
}
EXPECTED_RECEIVE = {
    "A": machine_can_receive("A"),
    "B": machine_can_receive("B"),
    "acme": INTEGRATOR_RECEIVES,
    "hass": HOME_ASSISTANT_RECEIVES,
    "srv": set(CASES),
}

# Wildcard filters and who may subscribe to them (the server may subscribe to all).
WILDCARDS = {
    "#": set(),
    "smartvend/v1/#": set(),
    "smartvend/v1/machines/#": set(),
    "smartvend/v1/machines/+/desired": set(),
    "smartvend/v1/machines/+/cmd/+": set(),
    "smartvend/v1/machines/A/cmd/+": {"A"},
    "smartvend/v1/machines/B/cmd/+": {"B"},
    "smartvend/v1/machines/A/#": set(),
    "smartvend/v1/machines/A/+": set(),
    "smartvend/v1/machines/+/+": set(),
    "smartvend/v1/machines/+/state": {"acme", "hass"},
    "smartvend/v1/machines/+/today": {"acme", "hass"},
    "smartvend/v1/machines/+/status": {"acme"},
    "smartvend/v1/machines/+/sales": {"acme"},
    "smartvend/v1/machines/+/results/+": set(),
    "smartvend/v1/server/+": set(),
    "+/v1/server/status": set(),
    "$SYS/#": set(),
    "homeassistant/#": {"hass"},
    "homeassistant/+/+/+/config": {"hass"},
    "homeassistant/status": {"hass"},
    "elsewhere/#": set(),
    "+/status": set(),
    "+/sensor/+/+/config": set(),
}


def may_subscribe(actor: str, topic_filter: str) -> bool:
    return actor == "srv" or actor in WILDCARDS[topic_filter]


def payload(prefix: str, case: tuple[str, str]) -> bytes:
    return f"{prefix}:{case[0]}:{case[1]}".encode()


def cases_in(messages: list[aiomqtt.Message], prefix: str) -> set[tuple[str, str]]:
    """The cases whose messages (tagged ``prefix``) arrived; other traffic ($SYS) is ignored."""
    found = set()
    for message in messages:
        assert isinstance(message.payload, bytes)
        parts = message.payload.decode(errors="replace").split(":")
        if len(parts) == 3 and parts[0] == prefix:
            found.add((parts[1], parts[2]))
    return found


@pytest.mark.parametrize("actor", ACTORS)
async def test_publish(mqtt_broker: BrokerUnderTest, actor: str) -> None:
    """An actor publishes (retained) on every topic; only its allowed ones get through."""
    sentinel = b"publish-sentinel"
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe("#", qos=1)
        async with client(mqtt_broker, actor) as mqtt:
            for case in CASES:
                await mqtt.publish(topic_of(case), payload("pub", case), qos=1, retain=True)
            if actor == "acme":  # may publish nowhere: the sentinel comes after its PUBACKs
                await watch.publish(topics.SERVER_STATUS, sentinel, qos=1)
            else:
                allowed_case = sorted(EXPECTED_PUBLISH[actor])[0]
                await mqtt.publish(topic_of(allowed_case), sentinel, qos=1)
            seen = await messages_until(watch, sentinel)
    live = cases_in(seen, "pub")
    assert live == EXPECTED_PUBLISH[actor]

    # Nothing refused was retained either.
    async with client(mqtt_broker, "watch") as watch:
        await watch.publish(topics.SERVER_STATUS, sentinel, qos=1, retain=True)
        await watch.subscribe("smartvend/v1/machines/#", qos=0)
        await watch.subscribe("homeassistant/#", qos=0)
        await watch.subscribe("elsewhere/#", qos=0)
        await watch.subscribe(topics.SERVER_STATUS, qos=0)
        kept = await messages_until(watch, sentinel)
    retained = cases_in(kept, "pub")
    expected = EXPECTED_PUBLISH[actor] - {SERVER}
    if mqtt_broker.kind == "embedded":
        # Only the contract's retained topics keep a message; Mosquitto keeps any.
        expected = {case for case in expected if acl.may_retain(topic_of(case))}
        assert expected < EXPECTED_PUBLISH[actor] - {SERVER} or actor == "acme"
    assert retained == expected


@pytest.mark.parametrize("actor", ACTORS)
async def test_subscribe_and_receive_exact_topics(mqtt_broker: BrokerUnderTest, actor: str) -> None:
    sentinel = b"receive-sentinel"
    filters = [topic_of(case) for case in CASES]
    async with client(mqtt_broker, actor) as mqtt:
        codes = granted(await mqtt.subscribe([(f, 1) for f in filters]))
        async with client(mqtt_broker, "watch") as watch:
            for case in CASES:
                await watch.publish(topic_of(case), payload("live", case), qos=1)
            await watch.publish(topics.SERVER_STATUS, sentinel, qos=1)
        seen = await messages_until(mqtt, sentinel)
    received = cases_in(seen, "live")
    assert received == EXPECTED_RECEIVE[actor]
    allowed = [case in EXPECTED_RECEIVE[actor] for case in CASES]
    if mqtt_broker.kind == "embedded":
        assert codes == allowed  # refused subscriptions get 0x80
    else:  # Mosquitto 2.0 grants any filter and filters each delivery instead
        assert all(codes[i] for i, ok in enumerate(allowed) if ok)


@pytest.mark.parametrize("actor", ACTORS)
async def test_subscribe_and_receive_wildcards(mqtt_broker: BrokerUnderTest, actor: str) -> None:
    sentinel = b"wildcard-sentinel"
    filters = list(WILDCARDS)
    async with client(mqtt_broker, actor) as mqtt:
        codes = granted(await mqtt.subscribe([(f, 1) for f in filters]))
        await mqtt.subscribe(topics.SERVER_STATUS, qos=1)
        async with client(mqtt_broker, "watch") as watch:
            for case in CASES:
                await watch.publish(topic_of(case), payload("wild", case), qos=1)
            await watch.publish(topics.SERVER_STATUS, sentinel, qos=1)
        seen = await messages_until(mqtt, sentinel)
    received = cases_in(seen, "wild")

    expected_codes = [may_subscribe(actor, f) for f in filters]
    if mqtt_broker.kind == "embedded":
        assert codes == expected_codes
        effective = [f for f in filters if may_subscribe(actor, f)]
    else:
        assert all(codes[i] for i, ok in enumerate(expected_codes) if ok)
        effective = filters
    effective.append(topics.SERVER_STATUS)
    reachable = {
        case for case in CASES if any(topic_matches_sub(f, topic_of(case)) for f in effective)
    }
    assert received == EXPECTED_RECEIVE[actor] & reachable
    assert received <= EXPECTED_RECEIVE[actor]


@pytest.mark.parametrize("actor", ACTORS)
async def test_retained_messages_respect_access(mqtt_broker: BrokerUnderTest, actor: str) -> None:
    """Retained messages on every topic; a new subscriber gets exactly its allowed ones."""
    async with client(mqtt_broker, "watch") as watch:
        for case in CASES:  # the server status goes last: it is the sentinel
            await watch.publish(topic_of(case), payload("kept", case), qos=1, retain=True)
    first = [topic_of(case) for case in CASES if case != SERVER]
    first += [f for f in WILDCARDS if not topic_matches_sub(f, topics.SERVER_STATUS)]
    async with client(mqtt_broker, actor) as mqtt:
        await mqtt.subscribe([(f, 0) for f in first])
        await mqtt.subscribe(topics.SERVER_STATUS, qos=0)
        seen = await messages_until(mqtt, payload("kept", SERVER))
    received = cases_in(seen, "kept")
    assert all(m.retain for m in seen)
    expected = EXPECTED_RECEIVE[actor] - {SERVER}
    if mqtt_broker.kind == "embedded":  # keeps retained messages on retained topics only
        expected = {case for case in expected if acl.may_retain(topic_of(case))}
    assert received == expected

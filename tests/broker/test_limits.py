"""Broker limits (CONTRACT 1 "Presence and limits"): payload size, retained topics,
protocol level, silent and oversized CONNECTs, on both brokers where they apply."""

import asyncio
import logging

import pytest

from broker import amqtt_handler
from broker.embedded import EmbeddedBroker
from broker.passwords import hash_secret
from broker.principals import StaticAuthenticator
from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client, messages_until
from tests.broker.raw import CONNACK, PUBACK, RawClient, connect_packet
from tests.support.ports import free_port

LIMIT = 16384
CONNACK_BAD_PROTOCOL = b"\x20\x02\x00\x01"


async def test_publish_over_the_payload_limit_is_dropped(mqtt_broker: BrokerUnderTest) -> None:
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.events("A"), qos=1)
        raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
        await raw.connect("A", "A", mqtt_broker.keys["A"])
        await raw.publish(topics.events("A"), b"x" * (LIMIT + 1), qos=1)
        assert (await raw.read()).kind == PUBACK  # the QoS flow completes; nothing is sent on
        await raw.publish(topics.events("A"), b"y" * LIMIT, qos=1)
        assert (await raw.read()).kind == PUBACK
        await raw.publish(topics.events("A"), b"end", qos=1)
        assert (await raw.read()).kind == PUBACK
        seen = await messages_until(watch, b"end")
        await raw.disconnect()
    assert [len(m.payload) for m in seen if isinstance(m.payload, bytes)] == [LIMIT]
    if mqtt_broker.embedded is not None:
        assert mqtt_broker.embedded.stats()["oversize_dropped"] == 1


async def test_retained_only_on_retained_topics(mqtt_broker: BrokerUnderTest) -> None:
    """A retained ``sales`` publish reaches subscribers with RETAIN=0 on both brokers.

    The embedded broker does not store it (only the contract's retained topics keep a
    message); Mosquitto has no per-topic retain rule and keeps it: a deviation.
    """
    async with client(mqtt_broker, "acme") as acme:
        await acme.subscribe(topics.sales("A"), qos=1)
        async with client(mqtt_broker, "srv") as srv:
            await srv.publish(topics.sales("A"), b"sale", qos=1, retain=True)
            await srv.publish(topics.state("A"), b"state", qos=1, retain=True)
        live = await asyncio.wait_for(anext(aiter(acme.messages)), 10)
        assert (live.payload, live.retain) == (b"sale", False)
    async with client(mqtt_broker, "acme") as acme:
        await acme.subscribe(topics.sales("A"), qos=1)
        await acme.subscribe(topics.state("A"), qos=1)
        kept = await messages_until(acme, b"state")
    if mqtt_broker.kind == "embedded":
        assert kept == []
        assert mqtt_broker.embedded is not None
        assert mqtt_broker.embedded.stats()["retain_refused"] == 1
    else:
        assert [(m.payload, m.retain) for m in kept] == [(b"sale", True)]


MQTT5_PROPERTIES = bytes([0x11]) + (3600).to_bytes(4, "big") + bytes([0x21, 0x00, 0x10])


async def test_mqtt5_connect_with_credentials(mqtt_broker: BrokerUnderTest) -> None:
    """The embedded broker answers MQTT 5 at once with CONNACK 1 and closes; Mosquitto
    speaks MQTT 5 and accepts it."""
    raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
    await raw.send(
        connect_packet(
            "A",
            "A",
            mqtt_broker.keys["A"],
            level=5,
            properties=MQTT5_PROPERTIES,
            will=(topics.status("A"), b'{"state":"lost","boot":1}', 1, True),
        )
    )
    answer = await raw.read(within=2.0)  # no 10 s stall
    assert answer.kind == CONNACK
    if mqtt_broker.kind == "embedded":
        assert answer.body == CONNACK_BAD_PROTOCOL[2:]
        assert await raw.closed_by_peer(2.0)
    else:
        assert answer.body[1] == 0  # MQTT 5 reason code "success"
    raw.close()


@pytest.mark.parametrize("level", [3, 5, 6, 255])
async def test_protocol_levels_other_than_311(mqtt_broker: BrokerUnderTest, level: int) -> None:
    """MQTT 3.1 (3) and 5: Mosquitto accepts them, the embedded broker answers CONNACK 1.
    Unknown levels: CONNACK 1 from both [MQTT-3.1.2-2]."""
    raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
    properties = b"" if level == 5 else None
    await raw.send(
        connect_packet("A", "A", mqtt_broker.keys["A"], level=level, properties=properties)
    )
    answer = await raw.read(within=2.0)
    accepted = mqtt_broker.kind == "mosquitto" and level in (3, 5)
    assert answer.kind == CONNACK
    assert answer.body[1] == (0 if accepted else 1)
    if not accepted:
        assert await raw.closed_by_peer(2.0)
    raw.close()


async def test_connection_without_connect_is_closed_and_counted() -> None:
    assert EmbeddedBroker("127.0.0.1", 1, StaticAuthenticator())._connect_timeout <= 10.0
    broker = EmbeddedBroker("127.0.0.1", free_port(), StaticAuthenticator(), connect_timeout=0.3)
    await broker.start()
    try:
        raw = await RawClient.open(broker.host, broker.port)
        assert await raw.closed_by_peer(5.0)
        raw.close()
        assert broker.stats()["connect_timeouts"] == 1
    finally:
        await broker.stop()


async def test_refused_connects_are_logged_briefly(
    mqtt_broker: BrokerUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    if mqtt_broker.embedded is None:
        assert mqtt_broker.kind == "mosquitto"  # Mosquitto logs to its own file
        return
    caplog.set_level(logging.INFO, logger="broker")
    for username, size in (("u" * 1000, 1000), ("v" * 65535, 100)):
        raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
        await raw.send(connect_packet("c" * size, username, "wrong"))
        assert await raw.closed_by_peer(5.0)
        raw.close()
    refused = [r.getMessage() for r in caplog.records if "refused CONNECT" in r.getMessage()]
    assert len(refused) == 2
    assert all(len(line) < 400 for line in refused), [len(line) for line in refused]
    assert mqtt_broker.embedded.stats()["connects_refused"] == 2


async def test_a_subscriber_far_behind_loses_new_messages_not_the_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unacknowledged QoS 1 deliveries are capped per session (embedded broker; Mosquitto
    has its own ``max_inflight_messages`` and ``max_queued_messages``)."""
    monkeypatch.setattr(amqtt_handler, "MAX_INFLIGHT", 5)
    keys = {"B": "key-b", "srv": "key-srv"}
    auth = StaticAuthenticator(
        {"B": ("machine", hash_secret(keys["B"])), "srv": ("server", hash_secret(keys["srv"]))}
    )
    broker = EmbeddedBroker("127.0.0.1", free_port(), auth)
    await broker.start()
    try:
        raw = await RawClient.open(broker.host, broker.port)
        await raw.connect("B", "B", keys["B"])
        await raw.subscribe(topics.machine_filter("cmd", "B"), 1)
        srv = await RawClient.open(broker.host, broker.port)
        await srv.connect("srv", "srv", keys["srv"])
        for n in range(8):
            await srv.publish(topics.cmd("B", f"c{n}"), b"x", qos=1)
            assert (await srv.read()).kind == PUBACK
        got = [(await raw.read()).publish()[0] for _ in range(5)]  # never acknowledged
        assert got == [topics.cmd("B", f"c{n}") for n in range(5)]
        assert await raw.nothing_within(0.5)
        assert broker.stats()["queue_dropped"] == 3
        await raw.disconnect()
        await srv.disconnect()
    finally:
        await broker.stop()


async def test_a_publish_far_over_the_limit(mqtt_broker: BrokerUnderTest) -> None:
    """The embedded broker closes the connection without reading the packet (counted);
    Mosquitto reads it, drops it and keeps the connection: a deviation."""
    raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
    await raw.connect("A", "A", mqtt_broker.keys["A"])
    try:
        await raw.publish(topics.events("A"), b"z" * (1 << 20), qos=1)
    except ConnectionError:  # reset while still sending: the broker closed early
        assert mqtt_broker.embedded is not None
    if mqtt_broker.embedded is not None:
        assert await raw.closed_by_peer(5.0)
        assert mqtt_broker.embedded.stats()["oversize_dropped"] == 1
    else:
        assert (await raw.read()).kind == PUBACK
        await raw.disconnect()
    raw.close()

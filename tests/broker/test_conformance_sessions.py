"""MQTT 3.1.1 sessions and QoS flows, on the embedded broker and Mosquitto alike.

Each test names the normative statement it checks. A bare client (tests.broker.raw)
leaves messages unacknowledged and drops its socket where the statement needs it.
"""

import asyncio

from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client
from tests.broker.raw import (
    CONNACK,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    Packet,
    RawClient,
    connect_packet,
)

QUIET = 0.5  # how long "nothing more arrives" is watched for


async def machine_b(broker: BrokerUnderTest, *, clean: bool) -> tuple[RawClient, Packet]:
    raw = await RawClient.open(broker.host, broker.port)
    connack = await raw.connect("B", "B", broker.keys["B"], clean=clean)
    assert connack.kind == CONNACK and connack.body[1] == 0, connack
    return raw, connack


def session_present(connack: Packet) -> bool:
    return bool(connack.body[0] & 0x01)


async def server_publishes(
    broker: BrokerUnderTest, *messages: tuple[str, bytes, int, bool]
) -> None:
    async with client(broker, "srv") as srv:
        for topic, payload, qos, retain in messages:
            await srv.publish(topic, payload, qos=qos, retain=retain)


async def test_session_present_flag(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-3.2.2-1] clean session: 0; [MQTT-3.2.2-2] resumed persistent session: 1."""
    raw, connack = await machine_b(mqtt_broker, clean=True)
    assert not session_present(connack)
    await raw.disconnect()
    raw, connack = await machine_b(mqtt_broker, clean=False)
    assert not session_present(connack)  # nothing stored for B yet
    await raw.disconnect()
    raw, connack = await machine_b(mqtt_broker, clean=False)
    assert session_present(connack)
    await raw.disconnect()


async def test_unacknowledged_qos1_is_resent_on_reconnect(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-4.4.0-1] unacknowledged PUBLISH re-sent with DUP=1 [MQTT-3.3.1-1]."""
    raw, _ = await machine_b(mqtt_broker, clean=False)
    assert await raw.subscribe(topics.machine_filter("cmd", "B"), 1) == b"\x01"
    await server_publishes(mqtt_broker, (topics.cmd("B", "c1"), b"first", 1, False))
    first = await raw.read()
    assert first.kind == PUBLISH and not first.dup and first.qos == 1
    topic, packet_id, payload = first.publish()
    raw.close()  # gone without PUBACK

    raw, connack = await machine_b(mqtt_broker, clean=False)
    assert session_present(connack)
    again = await raw.read()
    assert again.kind == PUBLISH and again.dup and again.qos == 1
    assert again.publish() == (topic, packet_id, payload)
    assert packet_id is not None
    await raw.ack(PUBACK, packet_id)
    assert await raw.nothing_within(QUIET)
    await raw.disconnect()

    raw, _ = await machine_b(mqtt_broker, clean=False)  # acknowledged: never again
    assert await raw.nothing_within(QUIET)
    await raw.disconnect()


async def test_unacknowledged_qos2_publish_and_pubrel_are_resent(
    mqtt_broker: BrokerUnderTest,
) -> None:
    """[MQTT-4.4.0-1] QoS 2: PUBLISH re-sent before PUBREC, PUBREL re-sent after it."""
    raw, _ = await machine_b(mqtt_broker, clean=False)
    assert await raw.subscribe(topics.machine_filter("cmd", "B"), 2) == b"\x02"
    await server_publishes(mqtt_broker, (topics.cmd("B", "c2"), b"exactly-once", 2, False))
    first = await raw.read()
    assert first.kind == PUBLISH and first.qos == 2
    _, packet_id, _ = first.publish()
    assert packet_id is not None
    raw.close()  # no PUBREC

    raw, _ = await machine_b(mqtt_broker, clean=False)
    again = await raw.read()
    assert (
        again.kind == PUBLISH
        and again.dup
        and again.publish()[1:]
        == (
            packet_id,
            b"exactly-once",
        )
    )
    await raw.ack(PUBREC, packet_id)
    pubrel = await raw.read()
    assert pubrel.kind == PUBREL and pubrel.packet_id == packet_id
    raw.close()  # no PUBCOMP

    raw, _ = await machine_b(mqtt_broker, clean=False)
    pubrel = await raw.read()
    assert pubrel.kind == PUBREL and pubrel.packet_id == packet_id  # not the PUBLISH again
    await raw.ack(PUBCOMP, packet_id)
    assert await raw.nothing_within(QUIET)
    await raw.disconnect()


async def test_messages_queued_offline_arrive_in_order_with_retain_0(
    mqtt_broker: BrokerUnderTest,
) -> None:
    """[MQTT-3.1.2-5] QoS 1/2 stored for an offline persistent session; [MQTT-3.3.1-9]
    they are not new subscriptions' retained messages, so RETAIN is 0 (a retained cmd
    included); [MQTT-4.6.0-2] in order."""
    raw, _ = await machine_b(mqtt_broker, clean=False)
    await raw.subscribe(topics.machine_filter("cmd", "B"), 1)
    await raw.subscribe(topics.desired("B"), 1)
    await raw.disconnect()
    sent = [
        (topics.cmd("B", "q1"), b"retained-cmd", 1, True),
        (topics.desired("B"), b"desired", 1, True),
        (topics.cmd("B", "q2"), b"plain-cmd", 1, False),
    ]
    await server_publishes(mqtt_broker, *sent)

    raw, connack = await machine_b(mqtt_broker, clean=False)
    assert session_present(connack)
    got = [await raw.read() for _ in sent]
    assert [p.publish()[::2] for p in got] == [(t, m) for t, m, _, _ in sent]
    assert [p.retain for p in got] == [False, False, False]
    for p in got:
        await raw.ack(PUBACK, p.packet_id_of_publish())
    # A new subscription to what is retained gets RETAIN=1 [MQTT-3.3.1-6].
    await raw.subscribe(topics.desired("B"), 1)
    retained = await raw.read()
    assert retained.retain and retained.publish()[::2] == (topics.desired("B"), b"desired")
    await raw.ack(PUBACK, retained.packet_id_of_publish())
    await raw.disconnect()


async def test_persistent_session_right_after_a_clean_one_is_kept(
    mqtt_broker: BrokerUnderTest,
) -> None:
    """[MQTT-3.1.2-4] a clean-session 0 CONNECT starts a session that outlives the
    connection, even when a clean session of that client id ended a moment before."""
    raw, _ = await machine_b(mqtt_broker, clean=True)
    await raw.subscribe(topics.machine_filter("cmd", "B"), 1)
    await raw.disconnect()
    raw, connack = await machine_b(mqtt_broker, clean=False)  # well under a second later
    assert not session_present(connack)  # the clean session left nothing behind
    await raw.subscribe(topics.machine_filter("cmd", "B"), 1)
    await raw.disconnect()
    await server_publishes(mqtt_broker, (topics.cmd("B", "kept"), b"while-away", 1, False))
    await asyncio.sleep(1.5)  # past amqtt's once-a-second sweep of ended sessions

    raw, connack = await machine_b(mqtt_broker, clean=False)
    assert session_present(connack)
    message = await raw.read()
    assert message.publish()[::2] == (topics.cmd("B", "kept"), b"while-away")
    await raw.ack(PUBACK, message.packet_id_of_publish())
    await raw.disconnect()


async def test_clean_session_discards_the_stored_one(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-3.1.2-6] a clean session discards the previous session and its queue."""
    raw, _ = await machine_b(mqtt_broker, clean=False)
    await raw.subscribe(topics.machine_filter("cmd", "B"), 1)
    await raw.disconnect()
    await server_publishes(mqtt_broker, (topics.cmd("B", "lost"), b"queued", 1, False))
    raw, connack = await machine_b(mqtt_broker, clean=True)
    assert not session_present(connack)
    assert await raw.nothing_within(QUIET)
    await raw.disconnect()
    raw, connack = await machine_b(mqtt_broker, clean=False)
    assert not session_present(connack)
    await server_publishes(mqtt_broker, (topics.cmd("B", "after"), b"unsubscribed", 1, False))
    assert await raw.nothing_within(QUIET)
    await raw.disconnect()


async def test_qos1_publish_is_acknowledged_and_forwarded(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-4.3.2-2] PUBACK for a QoS 1 PUBLISH; the subscriber gets min(QoS) [MQTT-3.8.4-6]."""
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.events("A"), qos=1)
        raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
        await raw.connect("A", "A", mqtt_broker.keys["A"])
        await raw.publish(topics.events("A"), b"e", qos=1)
        ack = await raw.read()
        assert ack.kind == PUBACK and ack.packet_id == 1
        message = await asyncio.wait_for(anext(aiter(watch.messages)), 10)
        assert (message.payload, message.qos, message.retain) == (b"e", 1, False)
        await raw.disconnect()


async def test_qos2_incoming_flow(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-4.3.3-2] PUBREC for a QoS 2 PUBLISH, PUBCOMP for its PUBREL; delivered once."""
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.events("A"), qos=2)
        raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
        await raw.connect("A", "A", mqtt_broker.keys["A"])
        await raw.publish(topics.events("A"), b"twice?", qos=2)
        rec = await raw.read()
        assert rec.kind == PUBREC
        await raw.ack(PUBREL, rec.packet_id)
        comp = await raw.read()
        assert comp.kind == PUBCOMP and comp.packet_id == rec.packet_id
        await raw.publish(topics.events("A"), b"end", qos=2)
        await raw.ack(PUBREL, (await raw.read()).packet_id)
        assert (await raw.read()).kind == PUBCOMP
        await raw.disconnect()
        seen = []
        async for message in watch.messages:  # QoS 2 both ways: in order
            seen.append(message.payload)
            if message.payload == b"end":
                break
        assert seen == [b"twice?", b"end"]


async def test_persistent_session_needs_a_client_id(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-3.1.3-8] clean session 0 with an empty client id: CONNACK 2, then closed."""
    raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
    connack = await raw.connect("", "acme", mqtt_broker.keys["acme"], clean=False)
    assert (connack.kind, connack.body[1]) == (CONNACK, 2)
    assert await raw.closed_by_peer(5.0)
    raw.close()


async def test_malformed_connect_closes_the_connection(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-3.1.2-3] the reserved flag set: the server closes without accepting."""
    raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
    good = connect_packet("A", "A", mqtt_broker.keys["A"])
    flags_at = 2 + 2 + 4 + 1  # fixed header (short length), name, level
    await raw.send(good[:flags_at] + bytes([good[flags_at] | 0x01]) + good[flags_at + 1 :])
    assert await raw.closed_by_peer(5.0)
    raw.close()

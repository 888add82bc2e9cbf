"""MQTT 3.1.1 wills, retained messages, PINGREQ and take-over on both brokers."""

import asyncio

from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client, messages_until
from tests.broker.raw import CONNACK, PINGREQ, PINGRESP, RawClient, packet

LOST = b'{"state":"lost","boot":3}'


async def machine_a_with_will(broker: BrokerUnderTest, *, retain: bool) -> RawClient:
    raw = await RawClient.open(broker.host, broker.port)
    connack = await raw.connect(
        "A", "A", broker.keys["A"], will=(topics.status("A"), LOST, 1, retain)
    )
    assert connack.kind == CONNACK and connack.body[1] == 0
    return raw


async def test_will_published_when_the_connection_drops(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-3.1.2-8] the will is published when the network connection closes without
    DISCONNECT; [MQTT-3.1.2-17] with will retain 1 it is kept as retained."""
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.status("A"), qos=1)
        raw = await machine_a_with_will(mqtt_broker, retain=True)
        raw.close()
        message = await asyncio.wait_for(anext(aiter(watch.messages)), 10)
        assert (message.payload, message.qos, message.retain) == (LOST, 1, False)
    async with client(mqtt_broker, "acme") as acme:
        await acme.subscribe(topics.status("A"), qos=1)
        kept = await asyncio.wait_for(anext(aiter(acme.messages)), 10)
        assert (kept.payload, kept.retain) == (LOST, True)


async def test_no_will_after_disconnect(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-3.1.2-10] DISCONNECT removes the will without publishing it."""
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.status("A"), qos=1)
        raw = await machine_a_with_will(mqtt_broker, retain=False)
        await raw.disconnect()
        await watch.publish(topics.status("A"), b"after", qos=1)
        assert await messages_until(watch, b"after") == []


async def test_retained_message_lifecycle(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-3.3.1-5] a retained message is stored; [MQTT-3.3.1-6]/[MQTT-3.3.1-8] a new
    subscription gets it with RETAIN=1; [MQTT-3.3.1-9] a live subscriber gets RETAIN=0;
    [MQTT-3.3.1-10] an empty retained payload clears it."""
    async with client(mqtt_broker, "acme") as live:
        await live.subscribe(topics.state("A"), qos=1)
        async with client(mqtt_broker, "srv") as srv:
            await srv.publish(topics.state("A"), b"v1", qos=1, retain=True)
        message = await asyncio.wait_for(anext(aiter(live.messages)), 10)
        assert (message.payload, message.retain) == (b"v1", False)
    async with client(mqtt_broker, "acme") as late:
        await late.subscribe(topics.state("A"), qos=1)
        message = await asyncio.wait_for(anext(aiter(late.messages)), 10)
        assert (message.payload, message.retain) == (b"v1", True)
    async with client(mqtt_broker, "srv") as srv:
        await srv.publish(topics.state("A"), b"", qos=1, retain=True)
        await srv.publish(topics.SERVER_STATUS, b"mark", qos=1, retain=True)
    async with client(mqtt_broker, "acme") as late:
        await late.subscribe(topics.state("A"), qos=1)
        await late.subscribe(topics.SERVER_STATUS, qos=1)
        assert await messages_until(late, b"mark") == []


async def test_pingreq_gets_pingresp(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-3.12.4-1] the server answers PINGREQ with PINGRESP."""
    raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
    await raw.connect("A", "A", mqtt_broker.keys["A"], keepalive=5)
    for _ in range(3):
        await raw.send(packet(PINGREQ, 0, b""))
        assert (await raw.read()).kind == PINGRESP
    await raw.disconnect()


async def test_second_connection_takes_over(mqtt_broker: BrokerUnderTest) -> None:
    """[MQTT-3.1.4-2] a CONNECT with a connected client's id closes the older connection;
    the older connection's will is published (it did not send DISCONNECT)."""
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.status("A"), qos=1)
        first = await machine_a_with_will(mqtt_broker, retain=False)
        second = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
        connack = await second.connect("A", "A", mqtt_broker.keys["A"])
        assert connack.body[1] == 0
        assert await first.closed_by_peer(5.0)
        first.close()
        will = await asyncio.wait_for(anext(aiter(watch.messages)), 10)
        assert will.payload == LOST
        await second.send(packet(PINGREQ, 0, b""))
        assert (await second.read()).kind == PINGRESP
        await second.disconnect()

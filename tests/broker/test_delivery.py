"""Message delivery details that the overridden amqtt paths must keep right."""

import asyncio

import aiomqtt

from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client, messages_until


async def test_delivery_qos_is_the_lower_of_publish_and_subscription(
    mqtt_broker: BrokerUnderTest,
) -> None:
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.telemetry("A"), qos=1)
        await watch.subscribe(topics.events("A"), qos=0)
        async with client(mqtt_broker, "A") as a:
            await a.publish(topics.telemetry("A"), b"t0", qos=0)
            await a.publish(topics.events("A"), b"e1", qos=1)
            await a.publish(topics.telemetry("A"), b"t1", qos=1)
            await a.publish(topics.telemetry("A"), b"end", qos=1)
        seen = await messages_until(watch, b"end")
    assert [(m.payload, m.qos) for m in seen] == [(b"t0", 0), (b"e1", 0), (b"t1", 1)]


async def test_unsubscribe_stops_delivery(mqtt_broker: BrokerUnderTest) -> None:
    async with client(mqtt_broker, "acme") as acme:
        await acme.subscribe(topics.machine_filter("state"), qos=1)
        await acme.subscribe(topics.SERVER_STATUS, qos=1)
        async with client(mqtt_broker, "watch") as watch:
            await watch.publish(topics.state("A"), b"s1", qos=1)
            await watch.publish(topics.SERVER_STATUS, b"mark-1", qos=1)
            assert [m.payload for m in await messages_until(acme, b"mark-1")] == [b"s1"]
            await acme.unsubscribe(topics.machine_filter("state"))
            await watch.publish(topics.state("A"), b"s2", qos=1)
            await watch.publish(topics.SERVER_STATUS, b"mark-2", qos=1)
            assert await messages_until(acme, b"mark-2") == []


async def test_persistent_session_gets_commands_sent_while_offline(
    mqtt_broker: BrokerUnderTest,
) -> None:
    async with client(mqtt_broker, "B", clean_session=False) as b:
        await b.subscribe(topics.machine_filter("cmd", "B"), qos=1)
    async with client(mqtt_broker, "watch") as watch:
        await watch.publish(topics.cmd("A", "for-a"), b"cmd-for-A", qos=1)
        await watch.publish(topics.cmd("B", "for-b"), b"cmd-for-B", qos=1)
    async with client(mqtt_broker, "B", clean_session=False) as b:
        got = await asyncio.wait_for(anext_message(b), 10)
    assert (str(got.topic), got.payload) == (topics.cmd("B", "for-b"), b"cmd-for-B")


async def anext_message(mqtt: aiomqtt.Client) -> aiomqtt.Message:
    async for message in mqtt.messages:
        return message
    raise AssertionError("no message")

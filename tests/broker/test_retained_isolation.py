"""Machine B never receives machine A's retained ``desired`` or ``cmd``.

amqtt 0.12.1 sends a connecting client the retained messages of *every* client's
subscriptions; these orders of events caught it.
"""

import aiomqtt
import pytest

from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client, messages_until

A_DESIRED = topics.desired("A")
A_CMD = topics.cmd("A", "order-1")
B_OWN = [(topics.desired("B"), 1), (topics.machine_filter("cmd", "B"), 1)]


async def retain_for_a(broker: BrokerUnderTest) -> None:
    async with client(broker, "watch") as watch:
        await watch.publish(A_DESIRED, b"A-desired", qos=1, retain=True)
        await watch.publish(A_CMD, b"A-cmd", qos=1, retain=True)


async def b_reconnects_and_sees(broker: BrokerUnderTest, *, clean_session: bool) -> list[bytes]:
    """B (re)connects, subscribes to its own topics, then to the server status (sentinel)."""
    sentinel = b"server-online"
    async with client(broker, "watch") as watch:
        await watch.publish(topics.SERVER_STATUS, sentinel, qos=1, retain=True)
    async with client(broker, "B", clean_session=clean_session) as b:
        await b.subscribe(B_OWN)
        await b.subscribe(topics.SERVER_STATUS, qos=1)
        seen = await messages_until(b, sentinel)
    return [bytes(m.payload) for m in seen if isinstance(m.payload, bytes)]


async def a_subscribes(a: aiomqtt.Client) -> None:
    await a.subscribe([(A_DESIRED, 1), (topics.machine_filter("cmd", "A"), 1)])


async def test_a_connected_first_then_b_connects(mqtt_broker: BrokerUnderTest) -> None:
    async with client(mqtt_broker, "A") as a:
        await a_subscribes(a)
        await retain_for_a(mqtt_broker)
        got_a = {bytes(m.payload) for m in await messages_until(a, b"A-cmd")} | {b"A-cmd"}
        assert got_a == {b"A-desired", b"A-cmd"}
        # B connects while A (subscribed to its retained topics) is online.
        assert await b_reconnects_and_sees(mqtt_broker, clean_session=True) == []
        # A B with no subscription at all gets nothing either.
        async with client(mqtt_broker, "B") as b:
            await b.subscribe(topics.SERVER_STATUS, qos=1)
            assert await messages_until(b, b"server-online") == []


@pytest.mark.parametrize("clean_session", [True, False], ids=["clean", "persistent"])
async def test_b_connected_first_then_a(mqtt_broker: BrokerUnderTest, clean_session: bool) -> None:
    async with client(mqtt_broker, "B", clean_session=clean_session) as b:
        await b.subscribe(B_OWN)
        await b.subscribe(topics.SERVER_STATUS, qos=1)
        await retain_for_a(mqtt_broker)
        async with client(mqtt_broker, "watch") as watch:
            await watch.publish(topics.SERVER_STATUS, b"after-a", qos=1)
        assert await messages_until(b, b"after-a") == []
    async with client(mqtt_broker, "A") as a:
        await a_subscribes(a)
        got_a = {bytes(m.payload) for m in await messages_until(a, b"A-cmd")} | {b"A-cmd"}
        assert got_a == {b"A-desired", b"A-cmd"}
        # B comes back (its session kept or not) while A is online.
        assert await b_reconnects_and_sees(mqtt_broker, clean_session=clean_session) == []


async def test_retained_before_anyone_connects(mqtt_broker: BrokerUnderTest) -> None:
    await retain_for_a(mqtt_broker)
    assert await b_reconnects_and_sees(mqtt_broker, clean_session=True) == []
    async with client(mqtt_broker, "A") as a:
        await a_subscribes(a)
        got_a = {bytes(m.payload) for m in await messages_until(a, b"A-cmd")} | {b"A-cmd"}
        assert got_a == {b"A-desired", b"A-cmd"}

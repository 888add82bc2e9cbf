"""Behaviour specific to the embedded broker: start-up, kicking, take-over, hardening."""

import asyncio
import socket

import aiomqtt
import pytest

from broker.embedded import EmbeddedBroker
from broker.errors import BrokerStartError
from broker.passwords import hash_secret
from broker.principals import StaticAuthenticator
from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client, messages_until
from tests.support.ports import free_port


@pytest.fixture
def embedded(mqtt_broker: BrokerUnderTest) -> EmbeddedBroker:
    if mqtt_broker.embedded is None:
        pytest.fail("fixture used with the wrong broker")
    return mqtt_broker.embedded


embedded_only = pytest.mark.parametrize("mqtt_broker", ["embedded"], indirect=True)


async def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = EmbeddedBroker("127.0.0.1", port, StaticAuthenticator())
        with pytest.raises(BrokerStartError) as caught:
            await broker.start()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "SMARTVEND_MQTT_PORT" in message and "SMARTVEND_MQTT_URL" in message
    assert isinstance(caught.value, OSError)
    assert not broker.running


async def test_listens_on_the_given_host_only() -> None:
    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port, StaticAuthenticator())
    await broker.start()
    try:
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.2", port)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
    finally:
        await broker.stop()


@embedded_only
async def test_disconnect_kicks_a_client_and_its_will_fires(
    mqtt_broker: BrokerUnderTest, embedded: EmbeddedBroker
) -> None:
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.status("A"), qos=1)
        async with client(mqtt_broker, "A", will=a_will(b"lost")) as kicked:
            assert embedded.connected_clients() == {"watch", "A"}
            await mqtt_broker.revoke("A")
            assert await embedded.disconnect("A")
            assert await messages_until(watch, b"lost") == []
            assert "A" not in embedded.connected_clients()
            await closed_by_broker(kicked)
    assert not await embedded.disconnect("A")
    assert not await embedded.disconnect("nobody")


@embedded_only
async def test_second_connection_of_an_account_takes_over(
    mqtt_broker: BrokerUnderTest, embedded: EmbeddedBroker
) -> None:
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.status("A"), qos=1)
        async with (
            client(mqtt_broker, "A", will=a_will(b"old-lost")) as older,
            client(mqtt_broker, "A") as newer,
        ):
            await closed_by_broker(older)
            await newer.subscribe(topics.desired("A"), qos=1)
            assert await messages_until(watch, b"old-lost") == []
            assert embedded.connected_clients() == {"watch", "A"}
            await watch.publish(topics.desired("A"), b"to-newer", qos=1)
            assert await messages_until(newer, b"to-newer") == []


@embedded_only
async def test_garbage_and_silence_before_connect_are_dropped(mqtt_broker: BrokerUnderTest) -> None:
    reader, writer = await asyncio.open_connection(mqtt_broker.host, mqtt_broker.port)
    writer.write(b"\x10\xff\xff\xff\xff\x7fGET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.SERVER_STATUS, qos=1)
        await watch.publish(topics.SERVER_STATUS, b"still-serving", qos=1)
        assert await messages_until(watch, b"still-serving") == []


async def test_connect_timeout() -> None:
    broker = EmbeddedBroker("127.0.0.1", free_port(), StaticAuthenticator(), connect_timeout=0.3)
    await broker.start()
    try:
        reader, writer = await asyncio.open_connection(broker.host, broker.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await broker.stop()


@embedded_only
async def test_dollar_publish_is_dropped_and_the_client_still_served(
    mqtt_broker: BrokerUnderTest,
) -> None:
    async with client(mqtt_broker, "srv") as srv:
        await srv.subscribe("#", qos=1)
        await srv.subscribe("$SYS/#", qos=1)
        await srv.publish("$SYS/fake", b"dollar", qos=1)
        await srv.publish(topics.SERVER_STATUS, b"after-dollar", qos=1)
        assert await messages_until(srv, b"after-dollar") == []


@embedded_only
async def test_refused_will_topic_refuses_the_connection(mqtt_broker: BrokerUnderTest) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(mqtt_broker, "A", will=aiomqtt.Will(topics.desired("B"), b"x")):
            pass


def a_will(payload: bytes) -> aiomqtt.Will:
    return aiomqtt.Will(topics.status("A"), payload, qos=1)


async def closed_by_broker(mqtt: aiomqtt.Client) -> None:
    with pytest.raises(aiomqtt.MqttError):
        await asyncio.wait_for(anext(aiter(mqtt.messages)), 5)


async def test_websocket_listener_and_stop_with_live_clients() -> None:
    key = "ws-key"
    auth = StaticAuthenticator({"srv": ("server", hash_secret(key))})
    broker = EmbeddedBroker("127.0.0.1", free_port(), auth, websocket_port=free_port())
    await broker.start()
    try:
        assert broker.websocket_port is not None
        async with aiomqtt.Client(
            "127.0.0.1",
            broker.websocket_port,
            username="srv",
            password=key,
            identifier="srv",
            transport="websockets",
            timeout=10,
        ) as mqtt:
            await mqtt.subscribe(topics.SERVER_STATUS, qos=1)
            await mqtt.publish(topics.SERVER_STATUS, b"over-ws", qos=1)
            assert await messages_until(mqtt, b"over-ws") == []
            assert broker.connected_clients() == {"srv"}
            await broker.stop()
            assert broker.connected_clients() == set()
            await closed_by_broker(mqtt)
    finally:
        await broker.stop()

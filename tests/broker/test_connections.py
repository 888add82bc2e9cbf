"""Who may connect at all, on both brokers."""

from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, can_connect, client, messages_until


async def test_every_account_connects_with_its_key(mqtt_broker: BrokerUnderTest) -> None:
    for username in ("A", "B", "acme", "srv", "watch"):
        assert await can_connect(mqtt_broker, username), username


async def test_anonymous_is_refused(mqtt_broker: BrokerUnderTest) -> None:
    assert not await can_connect(mqtt_broker, None, identifier="anon-1")
    assert not await can_connect(mqtt_broker, None, identifier="")


async def test_wrong_password_and_unknown_user_are_refused(mqtt_broker: BrokerUnderTest) -> None:
    assert not await can_connect(mqtt_broker, "A", password=mqtt_broker.keys["B"])
    assert not await can_connect(mqtt_broker, "A", password="")
    assert not await can_connect(mqtt_broker, "nobody", password=mqtt_broker.keys["A"])
    assert not await can_connect(mqtt_broker, "srv", password=mqtt_broker.keys["srv"] + "x")


async def test_revoked_key_is_refused_on_reconnect(mqtt_broker: BrokerUnderTest) -> None:
    assert await can_connect(mqtt_broker, "A")
    async with client(mqtt_broker, "acme"):
        await mqtt_broker.revoke("acme")
    await mqtt_broker.revoke("A")
    assert not await can_connect(mqtt_broker, "A")
    assert not await can_connect(mqtt_broker, "acme")
    assert await can_connect(mqtt_broker, "B")


async def test_machine_cannot_borrow_another_machines_client_id(
    mqtt_broker: BrokerUnderTest,
) -> None:
    async with client(mqtt_broker, "A") as a:
        await a.subscribe(topics.desired("A"), qos=1)
        impostor = client(mqtt_broker, "B", identifier="A")
        if mqtt_broker.kind == "embedded":
            # A machine must connect with its own id as client id.
            assert not await can_connect(mqtt_broker, "B", identifier="A")
        else:
            # Mosquitto replaces the client id by the username: B stays B.
            async with impostor as b:
                await b.subscribe(topics.desired("A"), qos=1)
                await b.subscribe(topics.SERVER_STATUS, qos=1)
                async with client(mqtt_broker, "watch") as watch:
                    await watch.publish(topics.desired("A"), b"for-A", qos=1)
                    await watch.publish(topics.SERVER_STATUS, b"done", qos=1)
                assert await messages_until(b, b"done") == []
        # A was not taken over: it still gets its own messages.
        async with client(mqtt_broker, "watch") as watch:
            await watch.publish(topics.desired("A"), b"still-A", qos=1)
        earlier = await messages_until(a, b"still-A")
        assert {bytes(m.payload) for m in earlier if isinstance(m.payload, bytes)} <= {b"for-A"}

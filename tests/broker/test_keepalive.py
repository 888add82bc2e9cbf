"""A machine whose connection goes silent (no FIN) gets its will published."""

import asyncio

from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client, connect_packet, messages_until

CONNACK_OK = b"\x20\x02\x00\x00"
PINGREQ = b"\xc0\x00"
PINGRESP = b"\xd0\x00"
WILL = b'{"state":"lost","boot":7}'

# Mosquitto 2.0 checks keepalives only every 5 s, so it cannot meet 1.5 x K for a
# small K; the embedded broker can.
EXTRA_DELAY = {"embedded": 1.0, "mosquitto": 6.5}


async def open_machine(
    broker: BrokerUnderTest, keepalive: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(broker.host, broker.port)
    writer.write(
        connect_packet(
            client_id="A",
            username="A",
            password=broker.keys["A"],
            will_topic=topics.status("A"),
            will=WILL,
            keepalive=keepalive,
        )
    )
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == CONNACK_OK
    return reader, writer


async def test_silent_machine_gets_its_will_published(mqtt_broker: BrokerUnderTest) -> None:
    keepalive = 1
    loop = asyncio.get_running_loop()
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.status("A"), qos=1)
        _, writer = await open_machine(mqtt_broker, keepalive)
        connected_at = loop.time()
        try:
            before = await messages_until(watch, WILL, within=1.5 * keepalive + 8)
            elapsed = loop.time() - connected_at
        finally:
            writer.close()
    assert before == []
    assert elapsed >= keepalive * 0.9, "dropped before the keepalive ran out"
    assert elapsed <= 1.5 * keepalive + EXTRA_DELAY[mqtt_broker.kind]


async def test_pinging_machine_stays_connected(mqtt_broker: BrokerUnderTest) -> None:
    """PINGREQ every half keepalive keeps the session alive past 1.5 x K."""
    keepalive = 1
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.status("A"), qos=1)
        reader, writer = await open_machine(mqtt_broker, keepalive)
        try:
            for _ in range(4):  # 2 s: longer than the 1.5 s grace period
                await asyncio.sleep(keepalive / 2)  # the pacing is what is under test
                writer.write(PINGREQ)
                await writer.drain()
                assert await asyncio.wait_for(reader.readexactly(2), 2) == PINGRESP
            await watch.publish(topics.status("A"), b"probe", qos=1)
            assert await messages_until(watch, b"probe") == []  # no will in between
        finally:
            writer.close()

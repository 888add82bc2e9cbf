"""Presence is the broker's keepalive and the machine's will, on both brokers (CONTRACT 1).

A connected machine that sends nothing but PINGREQ stays online and sells, however
long the server's clock runs; a machine whose socket goes silent is offline within
1.5 x keepalive (plus the broker's own sweep interval).
"""

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import pytest

from api.clock import FakeClock
from api.mqtt.accounts import DatabaseAuthenticator
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from schema import messages, topics
from tests.bridge.helpers import (
    Inbox,
    decoded,
    device,
    eventually,
    generated_mosquitto,
    is_kind,
    machine_row,
    order_status,
    pay,
    payload,
    report,
    running_bridge,
)
from tests.bridge.test_vend import MID, register
from tests.broker.mqtt_client import connect_packet
from tests.support.brokers import running_embedded

SERVER_KEEPALIVE_S = 30  # the server's default keepalive: silence it once punished
# How late past 1.5 x keepalive each broker may notice: Mosquitto 2.0 checks
# keepalives about every 5 s, the embedded broker every 0.25 s.
EXTRA_DELAY = {"embedded": 1.0, "mosquitto": 6.5}


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
async def broker(
    request: pytest.FixtureRequest,
    services: Services,
    server_password: str,
    authenticator: DatabaseAuthenticator,
) -> AsyncIterator[tuple[str, str, int, str]]:
    """``(kind, host, port, machine key)``: the machine is registered before the broker starts
    (the generated Mosquitto reads its accounts from the database)."""
    key = await register(services)
    if request.param == "embedded":
        async with running_embedded(authenticator) as embedded:
            yield "embedded", embedded.host, embedded.port, key
        return
    async with generated_mosquitto(services, server_password) as (host, port, _paths):
        yield "mosquitto", host, port, key


async def online(services: Services) -> bool:
    return (await machine_row(services, MID)).online


async def test_machine_that_only_pings_stays_online_and_vends(
    broker: tuple[str, str, int, str],
    services: Services,
    gateway: TestGateway,
    clock: FakeClock,
    server_password: str,
) -> None:
    _kind, host, port, key = broker
    keepalive = 1
    async with (
        running_bridge(services, host, port, server_password) as bridge,
        device(host, port, MID, key, boot=1, keepalive=keepalive) as machine,
        Inbox(machine) as got,
    ):
        await machine.subscribe([(topics.desired(MID), 1), (topics.machine_filter("cmd", MID), 1)])
        await machine.publish(
            topics.status(MID), messages.status_online(1, "1.0.0", clock.now()), qos=1, retain=True
        )
        await eventually(lambda: online(services), "the machine to be online")
        await got.wait_for(is_kind("desired", MID))
        heard = (await machine_row(services, MID)).last_seen
        # Ten keepalives of real time with nothing but PINGREQ on the wire, while the
        # server's clock runs ten of its own keepalives and the deadlines are swept.
        for _ in range(10):
            await asyncio.sleep(keepalive)  # the passing of time is what is under test
            clock.advance(SERVER_KEEPALIVE_S)
            await services.sweeper.tick()
            assert await online(services)
        row = await machine_row(services, MID)
        assert row.online and row.last_seen == heard, "the machine sent more than pings"

        code = row.display_code
        assert code is not None
        order_id = await pay(services, gateway, code)
        bridge.kick()
        cmd = decoded(
            "cmd",
            await got.wait_for(
                lambda m: topics.parse(m.topic.value)[0] == "cmd" and bool(payload(m))
            ),
        )
        assert cmd["order"] == order_id
        await report(machine, MID, cmd["cmd_id"], "accepted", 0, clock.now())
        await report(machine, MID, cmd["cmd_id"], "succeeded", 1, clock.now())

        async def dispensed() -> bool:
            return await order_status(services, order_id) == "dispensed"

        await eventually(dispensed, "the order to be dispensed")


def _publish_packet(topic: str, body: bytes, packet_id: int) -> bytes:
    """A raw QoS 1 retained PUBLISH."""
    name = topic.encode()
    rest = struct.pack("!H", len(name)) + name + struct.pack("!H", packet_id) + body
    length, encoded = len(rest), bytearray()
    while True:
        digit, length = length % 128, length // 128
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            break
    return bytes([0x33]) + bytes(encoded) + rest


async def test_silent_socket_is_offline_within_one_and_a_half_keepalives(
    broker: tuple[str, str, int, str],
    services: Services,
    clock: FakeClock,
    server_password: str,
) -> None:
    kind, host, port, key = broker
    keepalive = 2
    loop = asyncio.get_running_loop()
    async with running_bridge(services, host, port, server_password):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                connect_packet(
                    client_id=MID,
                    username=MID,
                    password=key,
                    will_topic=topics.status(MID),
                    will=messages.status_lost(1),
                    keepalive=keepalive,
                )
            )
            writer.write(
                _publish_packet(
                    topics.status(MID), messages.status_online(1, "1.0.0", clock.now()), 1
                )
            )
            await writer.drain()
            silent_since = loop.time()  # nothing more is sent: no PINGREQ, no FIN
            await eventually(lambda: online(services), "the machine to be online")

            async def offline() -> bool:
                return not await online(services)

            await eventually(offline, "the will", within=1.5 * keepalive + EXTRA_DELAY[kind] + 5)
            elapsed = loop.time() - silent_since
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        del reader
    assert keepalive <= elapsed <= 1.5 * keepalive + EXTRA_DELAY[kind] + 0.5

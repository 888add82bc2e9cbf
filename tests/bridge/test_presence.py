"""Presence over MQTT: online, and stale wills of older boots."""

import contextlib

from sqlalchemy import select

from api.clock import FakeClock
from api.mqtt.accounts import create_integrator
from api.services.container import Services
from broker.embedded import EmbeddedBroker
from schema import messages, topics
from schema.models import DeviceEvent
from tests.bridge.helpers import (
    Inbox,
    decoded,
    device,
    eventually,
    go_online,
    machine_row,
    mqtt,
    running_bridge,
)
from tests.bridge.test_vend import MID, register


async def retained_state(embedded: EmbeddedBroker, user: tuple[str, str]) -> dict[str, object]:
    """The ``state`` a newly subscribing integrator gets."""
    async with mqtt(embedded.host, embedded.port, *user) as reader, Inbox(reader) as inbox:
        await reader.subscribe(topics.state(MID), qos=1)
        message = await inbox.wait_for(lambda m: m.topic.value == topics.state(MID))
        assert message.retain
        return decoded("state", message)


async def test_online_and_a_stale_will_of_an_older_boot(
    services: Services, clock: FakeClock, embedded: EmbeddedBroker, server_password: str
) -> None:
    key = await register(services)
    _, password = await create_integrator(services.ctx.db, clock, "reports")
    host, port = embedded.host, embedded.port
    async with running_bridge(services, host, port, server_password) as bridge:
        async with contextlib.AsyncExitStack() as stack:
            first = await stack.enter_async_context(device(host, port, MID, key, boot=1))
            # Reading messages also collects the connection's end when it is taken over.
            await stack.enter_async_context(Inbox(first))
            await go_online(first, MID, 1, clock.now())

            async def boot_is(n: int) -> bool:
                row = await machine_row(services, MID)
                return row.online and row.boot == n

            await eventually(lambda: boot_is(1), "boot 1 online")
            await bridge.wait_drained()
            assert (await retained_state(embedded, ("reports", password)))["online"] is True

            # The machine reboots: the new connection takes over, the broker
            # publishes the old connection's will (boot 1) at some point around it.
            async with device(host, port, MID, key, boot=2) as second, Inbox(second):
                await go_online(second, MID, 2, clock.now())
                # And a will of boot 1 arriving after boot 2's online, for certain.
                await second.publish(
                    topics.status(MID), messages.status_lost(1), qos=1, retain=True
                )
                barrier = messages.encode(
                    "events", {"type": "door_open", "code": "barrier", "detail": "", "ts": 1}
                )
                await second.publish(topics.events(MID), barrier, qos=1)

                async def barrier_seen() -> bool:
                    async with services.ctx.db() as s:
                        found = await s.scalar(
                            select(DeviceEvent.id).where(DeviceEvent.code == "barrier")
                        )
                    return found is not None

                await eventually(barrier_seen, "the barrier event after the stale will")
                assert await boot_is(2)
                await bridge.wait_drained()
                assert (await retained_state(embedded, ("reports", password)))["online"] is True

                # A real loss (the broker publishes boot 2's will) takes it offline.
                assert await embedded.disconnect(MID)

        async def offline() -> bool:
            return not (await machine_row(services, MID)).online

        await eventually(offline, "the will of boot 2 to take the machine offline")
        await bridge.wait_drained()
        assert (await retained_state(embedded, ("reports", password)))["online"] is False

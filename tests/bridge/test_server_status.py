"""The server's own presence on ``server/status``: online, its will, an orderly goodbye."""

import asyncio

from api.clock import FakeClock
from api.mqtt.accounts import SERVER_USERNAME, create_integrator
from api.services.container import Services
from broker.embedded import EmbeddedBroker
from schema import topics
from tests.bridge.helpers import Inbox, decoded, mqtt, running_bridge, wait_disconnected


async def test_server_status_online_will_and_goodbye(
    services: Services, clock: FakeClock, embedded: EmbeddedBroker, server_password: str
) -> None:
    _, password = await create_integrator(services.ctx.db, clock, "reports")
    host, port = embedded.host, embedded.port
    async with mqtt(host, port, "reports", password) as reader, Inbox(reader) as inbox:
        await reader.subscribe(topics.SERVER_STATUS, qos=1)

        def states() -> list[dict[str, object]]:
            return [decoded("server_status", m) for m in inbox.on(topics.SERVER_STATUS)]

        async with running_bridge(services, host, port, server_password) as bridge:
            await inbox.wait_for(lambda m: m.topic.value == topics.SERVER_STATUS)
            assert states() == [{"state": "online", "ts": clock.now()}]

            # The connection drops: the broker publishes the will, the bridge comes back.
            assert await embedded.disconnect(SERVER_USERNAME)
            await wait_disconnected(bridge)
            async with asyncio.timeout(10):
                await bridge.connected.wait()
            await inbox.wait_for(lambda m: len(states()) >= 3)
            assert states()[1:3] == [{"state": "offline"}, {"state": "online", "ts": clock.now()}]
            assert bridge.connections == 2
            clock.advance(5)

        await inbox.wait_for(lambda m: len(states()) >= 4)
        assert states()[3] == {"state": "offline", "ts": clock.now()}

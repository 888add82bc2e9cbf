"""A worker that dies with machines' ``online`` in hand: the leader reads them again.

Several workers share the machines' messages (a shared subscription): each
``online`` goes to one of them. A worker killed before it handled its share
loses those messages for good; its will (``server/status`` offline) makes the
leader republish, and the leader then reads every retained ``status`` through a
plain subscription, so every connected machine is shown online.
"""

import asyncio
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select

from api.mqtt.accounts import server_credentials
from api.mqtt.bridge import Bridge
from api.server.cluster import SHARED_GROUP
from api.server.runtime import open_runtime
from api.services.container import Services
from schema import messages, topics
from schema.models import Machine
from tests.e2e import flow
from tests.reliability.faults import mosquitto_for
from tests.support import stack
from tests.support.databases import migrate_async

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]

MACHINES = [f"r-{n}" for n in range(6)]


async def offline(services: Services) -> list[str]:
    async with services.ctx.db() as s:
        return sorted((await s.scalars(select(Machine.id).where(~Machine.online))).all())


async def test_onlines_a_dead_worker_took_are_read_again(
    tmp_path: Path, postgresql_url: str
) -> None:
    await migrate_async(postgresql_url)
    settings = stack.test_settings(tmp_path, database_url=postgresql_url, workers=2)
    async with open_runtime(settings) as rt:
        services = rt.services
        keys = {mid: await flow.register(services, mid) for mid in MACHINES}
        for mid in MACHINES:  # online at boot 1, then its will: offline
            await services.machines.apply_status(mid, {"state": "online", "boot": 1})
            await services.machines.apply_status(mid, {"state": "lost", "boot": 1})
        async with mosquitto_for(services, settings) as broker:
            creds = server_credentials(settings)
            leader = Bridge(
                services,
                host="127.0.0.1",
                port=broker.server_port,
                username=creds.username,
                password=creds.password,
                client_id=f"{creds.username}-leader",
                shared_group=SHARED_GROUP,
            )
            running = asyncio.create_task(leader.run())
            try:
                async with asyncio.timeout(20):
                    await leader.connected.wait()
                async with aiomqtt.Client(  # a worker that takes its share and dies
                    "127.0.0.1", broker.server_port, username=creds.username,
                    password=creds.password, identifier=f"{creds.username}-doomed",
                ) as doomed:  # fmt: skip
                    await doomed.subscribe(
                        topics.shared(SHARED_GROUP, topics.machine_filter("status")), qos=1
                    )
                    for mid in MACHINES:  # back with boot 2: each online goes to one worker
                        async with aiomqtt.Client(
                            "127.0.0.1", broker.device_port, username=mid, password=keys[mid],
                            identifier=mid,
                        ) as machine:  # fmt: skip
                            online = b'{"state":"online","boot":2,"fw":"1.0.0","ts":1}'
                            await machine.publish(topics.status(mid), online, qos=1, retain=True)
                    # the leader handles its share (round robin: half of them)
                    await flow.until(
                        lambda: _at_most_offline(services, len(MACHINES) // 2),
                        "the leader's share of the onlines handled",
                        10,
                    )
                    lost = await offline(services)
                    assert lost, "the doomed worker took none of the onlines"
                    # its will: the broker says it is gone
                    now = services.ctx.clock.now()
                    await doomed.publish(
                        topics.SERVER_STATUS, messages.server_offline(now), qos=1, retain=True
                    )
                await flow.until(lambda: _none_offline(services), f"{lost} shown online again", 20)
            finally:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)


async def _none_offline(services: Services) -> bool:
    return not await offline(services)


async def _at_most_offline(services: Services, count: int) -> bool:
    return len(await offline(services)) <= count

"""Presence converges after worker kills and broker restarts (PostgreSQL, Mosquitto,
``serve --workers 2``).

Machines drop their connections (their wills say ``lost``) and come back with a
higher boot while a worker is killed with SIGKILL and Mosquitto is restarted (it
keeps no retained messages, as after a crash). Whatever a dead worker took and
never handled, and whatever was published while no worker was subscribed, every
connected machine is shown online within seconds of the last fault.
"""

import asyncio
import random
from pathlib import Path

import pytest
from sqlalchemy import select

from api.server.runtime import open_runtime
from api.services.container import Services
from schema.models import Machine
from tests.e2e import flow
from tests.reliability.faults import mosquitto_for, presence_converges, worker_settings
from tests.support import stack
from tests.support.databases import migrate_async
from tests.support.workers import serve_workers

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.timeout(240)]

MACHINES = [f"p-{n}" for n in range(10)]
ROUNDS = 3
CONVERGE_S = 20.0  # device reconnect backoff is at most 10 s


async def shown_all_offline(services: Services) -> bool:
    async with services.ctx.db() as s:
        return not any((await s.scalars(select(Machine.online))).all())


async def test_every_connected_machine_is_shown_online_after_faults(
    tmp_path: Path, postgresql_url: str
) -> None:
    await migrate_async(postgresql_url)
    settings = stack.test_settings(tmp_path, database_url=postgresql_url)
    rng = random.Random(3)
    async with open_runtime(settings) as rt:
        services = rt.services
        keys = [(mid, await flow.register(services, mid)) for mid in MACHINES]
        async with (
            mosquitto_for(services, settings) as broker,
            serve_workers(
                2, worker_settings(tmp_path, postgresql_url, broker), tmp_path
            ) as workers,
            flow.fleet(broker.device_port, keys) as fleet,
        ):
            for mid in MACHINES:
                await flow.wait_online(services, mid)
            for round_ in range(ROUNDS):
                # power cuts: wills fire, the machines come back with a higher boot
                for mid in rng.sample(MACHINES, 4):
                    fleet.machine(mid).drop_connection()
                # ... while a worker dies (the leader every other round)
                pids = sorted(p for p in workers.pids("connected to the MQTT broker")
                              if workers.alive(p))  # fmt: skip
                leader = workers.leader()
                victim = leader if round_ % 2 == 0 and leader is not None else pids[0]
                workers.kill(victim)
                await asyncio.sleep(0.3)
                await broker.restart(down_s=0.5)
                await asyncio.sleep(1.0)
            # Machines drop (their wills are handled: offline) and the broker goes down
            # for a while: the machines may be back, ``online`` retained, before any
            # worker has subscribed again.
            await presence_converges(services, fleet, CONVERGE_S)
            for mid in MACHINES:
                fleet.machine(mid).drop_connection()
            await flow.until(
                lambda: shown_all_offline(services), "every will handled", within=CONVERGE_S
            )
            await broker.restart(down_s=3.0)
            took = await presence_converges(services, fleet, CONVERGE_S)
            print(f"presence converged {took:.1f} s after the last fault")
            assert workers.said("read the machines' retained status again")

"""A small chaos run: purchases on ``serve --workers 2`` (PostgreSQL, Mosquitto's
workers' listener) while a worker is killed with SIGKILL and Mosquitto is restarted.

Money holds (every paid order dispensed or refunded exactly, never two commands
for one order, no unit run twice), stock adds up on the server and on the
machines, presence converges, and no answer is a 5xx outside the fault windows
(never a 500 at all: a 503 ``machine_offline`` while the broker is down is the
contract's answer).
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.server.runtime import open_runtime
from tests.e2e import flow
from tests.e2e.test_workers import (
    PRICE,
    STOCK,
    Shoppers,
    check_money_and_stock,
    settled,
)
from tests.fakes.razorpay_server import razorpay_fake
from tests.reliability.faults import mosquitto_for, presence_converges, worker_settings
from tests.support import stack
from tests.support.databases import migrate_async
from tests.support.workers import CONNECTED, serve_workers

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.mosquitto,
    pytest.mark.chaos,
    pytest.mark.timeout(180),
]

MACHINES = [f"chaos-{n}" for n in range(4)]
ROUNDS = 3  # purchases per machine
KILL_AT = 3  # paid orders before the leader is killed
RESTART_AT = 6  # paid orders before Mosquitto is restarted
KILL_AGAIN_AT = 9  # paid orders before a follower is killed
BROKER_DOWN_S = 1.0
WINDOW_AFTER_S = 15.0  # a fault's window: until the fleet and the workers are back
CONVERGE_S = 20.0


@dataclass
class Recorded(Shoppers):
    """Shoppers who keep every answer with its time."""

    answers: list[tuple[float, str, int, str]] = field(default_factory=list)

    async def post(self, path: str, body: dict[str, Any], *, retry: bool) -> httpx.Response:
        r = await super().post(path, body, retry=retry)
        self.answers.append((time.monotonic(), path, r.status_code, r.text[:200]))
        return r


async def test_purchases_survive_a_killed_worker_and_a_broker_restart(
    tmp_path: Path, postgresql_url: str
) -> None:
    await migrate_async(postgresql_url)
    settings = stack.test_settings(tmp_path, database_url=postgresql_url)
    windows: list[tuple[float, float]] = []
    async with razorpay_fake() as fake, open_runtime(settings) as rt:
        services = rt.services
        keys = {
            mid: await flow.register(services, mid, stock=STOCK, price=PRICE, capacity=STOCK)
            for mid in MACHINES
        }
        async with mosquitto_for(services, settings) as broker:
            extra = {
                "razorpay_key_id": fake.key_id,
                "razorpay_key_secret": fake.key_secret,
                "razorpay_webhook_secret": fake.webhook_secret,
                "razorpay_base_url": fake.base_url,
                "lock_ttl_s": "8",
            }
            async with (
                serve_workers(
                    2, worker_settings(tmp_path, postgresql_url, broker, **extra), tmp_path
                ) as workers,
                flow.fleet(broker.device_port, list(keys.items())) as fleet,
            ):
                for mid in MACHINES:
                    await flow.wait_online(services, mid)
                shoppers = Recorded(workers.url, fake)

                async def customer(mid: str) -> None:
                    for n in range(ROUNDS):
                        await shoppers.buy(fleet.machine(mid), f"chaos-{mid}-{n}", 1 + n % 2)

                async def chaos() -> None:
                    await shoppers.wait_paid(KILL_AT)
                    leader = workers.leader()
                    assert leader is not None
                    started = time.monotonic()
                    workers.kill(leader)
                    fleet.machine(MACHINES[0]).drop_connection()  # a power cut meanwhile
                    windows.append((started, time.monotonic() + WINDOW_AFTER_S))
                    await shoppers.wait_paid(RESTART_AT)
                    started = time.monotonic()
                    await broker.restart(down_s=BROKER_DOWN_S)
                    windows.append((started, time.monotonic() + WINDOW_AFTER_S))
                    await shoppers.wait_paid(KILL_AGAIN_AT)
                    started = time.monotonic()
                    follower = await workers.wait(
                        lambda: next(
                            (
                                p
                                for p in workers.pids(CONNECTED)
                                if p != workers.leader() and workers.alive(p)
                            ),
                            None,
                        ),
                        "a connected worker that does not lead",
                        within=60,
                    )
                    workers.kill(follower)
                    fleet.machine(MACHINES[1]).drop_connection()
                    windows.append((started, time.monotonic() + WINDOW_AFTER_S))

                async with asyncio.TaskGroup() as tg:
                    tg.create_task(chaos())
                    for mid in MACHINES:
                        tg.create_task(customer(mid))
                assert broker.restarts == 1 and len(windows) == 3

                paid = set(shoppers.paid)
                assert len(paid) == ROUNDS * len(MACHINES)
                await settled(services, paid)
                await check_money_and_stock(
                    services, fake, paid, {mid: fleet.machine(mid) for mid in MACHINES}
                )
                took = await presence_converges(services, fleet, CONVERGE_S)
                print(f"presence converged {took:.1f} s after the run")

    server_errors = [a for a in shoppers.answers if a[2] >= 500]
    assert [a for a in server_errors if a[2] == 500] == []
    outside = [a for a in server_errors if not any(lo <= a[0] <= hi for lo, hi in windows)]
    assert outside == [], outside
    print(f"{len(shoppers.answers)} answers; 5xx inside fault windows: {server_errors}")

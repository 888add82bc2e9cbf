"""Shoppers hammer ``lock-by-code`` and ``create-order`` on two servers over one PostgreSQL.

Many shoppers race for the same machines and codes, double-submit orders on
both servers, pay (both servers verify the same payment), unlock and walk away,
while machines finish vends and both servers sweep expired locks and codes. Every
answer is one the contract names: races are ``machine_busy``, ``invalid_code``,
``session_expired`` and the like, never a 5xx. Money and stock add up after.
"""

import asyncio
import functools
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from api.clock import FakeClock
from api.http.contention import retried
from api.payments.test_gateway import TestGateway
from api.services.machines import NewMachine
from schema.models import Command, Machine, Order
from tests.http.conftest import display_code
from tests.support.services import unfinished_commands
from tests.support.stack import Stack, two_servers
from tests.support.uvicorn_server import client

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = [pytest.mark.postgres]

MACHINES = 8
SHOPPERS = 24
JOURNEYS = 8  # per shopper
STOCK = 400


@pytest.fixture
async def pair(tmp_path: Path, postgresql_url: str) -> AsyncIterator[tuple[Stack, Stack]]:
    clock = FakeClock(1_900_000_000)
    async with two_servers(tmp_path, postgresql_url, clock=clock) as (a, b):
        for n in range(MACHINES):
            mid = f"race-{n}"
            await a.services.machines.register(
                NewMachine(machine_id=mid, name=mid, price_amount=2000, capacity=STOCK, stock=STOCK)
            )
            await a.services.machines.apply_status(mid, {"state": "online", "boot": 1})
        yield a, b


class Shoppers:
    def __init__(self, servers: list[tuple[Stack, httpx.AsyncClient]], seed: int) -> None:
        self.servers = servers
        self.rng = random.Random(seed)
        self.answers: Counter[tuple[str, int, str]] = Counter()
        self.failures: list[str] = []

    async def post(self, at: int, path: str, body: dict[str, object]) -> httpx.Response:
        r = await self.servers[at][1].post(path, json=body)
        code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else ""
        self.answers[(path, r.status_code, code)] += 1
        if r.status_code >= 500:
            self.failures.append(f"{path} {r.status_code} {r.text}")
        return r

    async def journey(self, shopper: int, n: int) -> None:
        rng = self.rng
        mid = f"race-{rng.randrange(MACHINES)}"
        client = f"shopper-{shopper:03d}-{n:03d}"
        try:
            code = await display_code(self.servers[0][0], mid)
        except AssertionError:  # locked: no code on display; guess a stale one
            code = f"{rng.randrange(1_000_000):06d}"
        if rng.random() < 0.1:
            code = f"{(int(code) + 1) % 1_000_000:06d}"  # a typo
        body: dict[str, object] = {"code": code, "client_id": client}
        if rng.random() < 0.7:
            body["machine_id"] = mid
        at = rng.randrange(2)
        lock = await self.post(at, "/api/lock-by-code", body)
        if lock.status_code != 200:
            return
        session = lock.json()["session_id"]
        order_body = {"session_id": session, "client_id": client, "quantity": rng.randint(1, 2)}
        if rng.random() < 0.3:  # a double submit, one to each server
            created = await asyncio.gather(
                self.post(0, "/create-order", order_body), self.post(1, "/create-order", order_body)
            )
            made = [(i, r) for i, r in enumerate(created) if r.status_code == 200]
        else:
            other = 1 - at
            r = await self.post(other, "/create-order", order_body)
            made = [(other, r)] if r.status_code == 200 else []
        choice = rng.random()
        if made and choice < 0.65:
            where, order = made[-1]
            gateway = self.servers[where][0].services.gateway
            assert isinstance(gateway, TestGateway)
            proof = await gateway.checkout(order.json()["gateway_order_id"])
            await asyncio.gather(
                self.post(0, "/verify-payment", proof), self.post(1, "/verify-payment", proof)
            )
        elif choice < 0.85:
            await self.post(
                rng.randrange(2),
                f"/api/machine/{mid}/unlock",
                {"client_id": client, "session_id": session},
            )

    async def shopper(self, shopper: int) -> None:
        for n in range(JOURNEYS):
            await self.journey(shopper, n)


async def machines_vend(servers: list[Stack], stop: asyncio.Event) -> None:
    """Every machine finishes each command it gets, through either server."""
    turn = 0
    while not stop.is_set():
        for command in await unfinished_commands(servers[0].services):
            turn += 1
            apply = functools.partial(
                servers[turn % 2].services.dispense.apply_result, command.machine_id, command.id
            )
            # a lost race is retried, as the bridge's next delivery of the result would be
            await retried("accepted", functools.partial(apply, "accepted", 0))
            await retried("succeeded", functools.partial(apply, "succeeded", command.quantity))
        await asyncio.sleep(0.02)


async def time_passes(servers: list[Stack], clock: FakeClock, stop: asyncio.Event) -> None:
    """Locks and codes run out now and then; both servers sweep."""
    while not stop.is_set():
        await asyncio.sleep(0.2)
        clock.advance(100)
        # a sweep that lost a race is done again (the next tick would)
        await asyncio.gather(*(retried("sweep", s.services.sweeper.tick) for s in servers))


async def test_racing_shoppers_get_contract_answers_only(pair: tuple[Stack, Stack]) -> None:
    a, b = pair
    clock = a.services.ctx.clock
    assert isinstance(clock, FakeClock)
    async with (
        client(a.url, timeout=60) as on_a,
        client(b.url, timeout=60) as on_b,
    ):
        crowd = Shoppers([(a, on_a), (b, on_b)], seed=19)
        stop = asyncio.Event()
        background = [
            asyncio.create_task(machines_vend([a, b], stop)),
            asyncio.create_task(time_passes([a, b], clock, stop)),
        ]
        try:
            await asyncio.gather(*(crowd.shopper(n) for n in range(SHOPPERS)))
        finally:
            stop.set()
            await asyncio.gather(*background)
        # the last vends finish
        await machines_vend_once([a, b])
    print(sorted(crowd.answers.items()))
    assert crowd.failures == []
    locks = sum(
        v for (p, s, _), v in crowd.answers.items() if p == "/api/lock-by-code" and s == 200
    )
    busy = crowd.answers[("/api/lock-by-code", 409, "machine_busy")]
    assert locks >= SHOPPERS // 2 and busy > 0  # the races did happen
    async with a.services.ctx.db() as s:
        sold = await s.scalar(select(func.coalesce(func.sum(Order.dispensed), 0)))
        stock = await s.scalar(select(func.sum(Machine.stock)))
        commands = await s.scalar(select(func.count()).select_from(Command))
        twice = (
            await s.execute(
                select(Command.order_id).group_by(Command.order_id).having(func.count() > 1)
            )
        ).all()
    assert sold is not None and sold > 0 and commands
    assert stock == MACHINES * STOCK - sold
    assert twice == []  # one dispense command per order


async def machines_vend_once(servers: list[Stack]) -> None:
    for command in await unfinished_commands(servers[0].services):
        await servers[0].services.dispense.apply_result(
            command.machine_id, command.id, "succeeded", command.quantity
        )

"""Rate budgets shared through PostgreSQL: two servers (two pools, as two workers) on one
database spend the same buckets, all or nothing, and never more than a bucket holds.

Then the limits themselves across two running servers: the code-guess budget of a
shopper, the admin login throttle and the feedback limit hold whichever server a
request reaches.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, select

from api.infra.db import create_engine
from api.services.budget_store_pg import KEY_MAX, PostgresBudgets, stored_key
from api.services.budgets import Charge, Rate
from api.services.guesses import FLEET_CODE_ONLY, GuessGuard, GuessLimits
from api.services.machines import NewMachine
from api.services.policy import VendPolicy
from api.settings import async_database_url
from schema.models import RateBudget
from tests.support.databases import migrate_async
from tests.support.stack import ADMIN_PASSWORD, Stack, two_servers

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = [pytest.mark.postgres]

FIVE = Rate(capacity=5, per_s=1 / 60)


@contextlib.asynccontextmanager
async def two_stores(url: str) -> AsyncIterator[tuple[PostgresBudgets, PostgresBudgets]]:
    await migrate_async(url)
    engines = [create_engine(async_database_url(url)) for _ in range(2)]
    try:
        yield PostgresBudgets(engines[0]), PostgresBudgets(engines[1])
    finally:
        for engine in engines:
            await engine.dispose()


async def test_two_servers_spend_one_bucket(postgresql_url: str) -> None:
    async with two_stores(postgresql_url) as (a, b):
        charge = Charge("client:shopper-1", FIVE)
        for store in (a, b, a, b, a):
            assert await store.take([charge], 1000) is None
        refusal = await b.take([charge], 1000)
        assert refusal is not None and refusal.charge == charge
        assert refusal.wait_s == pytest.approx(60)
        assert await a.level(charge, 1000) == 0
        assert await a.take([charge], 1060) is None  # one token regained a minute later
        await b.give_back([charge], 1060)
        assert await a.level(charge, 1060) == 1


async def test_a_take_is_all_or_nothing(postgresql_url: str) -> None:
    async with two_stores(postgresql_url) as (a, b):
        rich, poor = Charge("machine:m1", FIVE), Charge("source:203.0.113.7", Rate(1, 0.001))
        assert await b.take([poor], 50) is None
        refusal = await a.take([rich, poor], 50)
        assert refusal is not None and refusal.charge == poor
        assert await b.level(rich, 50) == 5  # not charged for the refused take
        too_big = Charge("fleet:code-only", Rate(2, 1), cost=3)
        refused = await a.take([too_big], 50)
        assert refused is not None and refused.wait_s == float("inf")


async def test_concurrent_takes_never_overspend(postgresql_url: str) -> None:
    async with two_stores(postgresql_url) as (a, b):
        shared = [Charge("client:c", FIVE), Charge("source:s", Rate(50, 0.0))]

        async def one(n: int) -> bool:
            store = a if n % 2 else b
            mine = Charge(f"machine:m{n % 3}", FIVE)  # overlapping keys, different orders
            return await store.take([mine, *shared] if n % 2 else [*shared, mine], 7) is None

        granted = await asyncio.gather(*(one(n) for n in range(40)))
        assert sum(granted) == 5
        assert await a.level(shared[1], 7) == 45


async def test_give_backs_in_a_crowd_are_written_together(postgresql_url: str) -> None:
    """Many give-backs at once: each returns once its own is written, all of them land,
    and those that waited for one in flight share a statement."""
    async with two_stores(postgresql_url) as (a, b):
        shoppers = [Charge(f"client:shopper-{n}", FIVE) for n in range(40)]
        source = Charge("source:10.0.0.1", Rate(capacity=100, per_s=1 / 60))
        for charge in shoppers:
            assert await a.take([charge, source], 1000) is None
        assert await b.level(source, 1000) == 60
        statements = 0
        engine = a._engine.sync_engine

        def count(*_args: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(engine, "before_cursor_execute", count)
        try:
            await asyncio.gather(*(a.give_back([charge, source], 1000) for charge in shoppers))
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert await b.level(source, 1000) == 100
        assert [await b.level(charge, 1000) for charge in shoppers] == [5] * 40
        assert 1 <= statements < len(shoppers) // 4


async def test_a_long_key_is_stored_by_its_digest(postgresql_url: str) -> None:
    async with two_stores(postgresql_url) as (a, b):
        long = Charge("admin-login:" + "x" * 1000 + "|198.51.100.1", Rate(1, 0.0))
        assert await a.take([long], 1) is None
        assert await b.take([long], 1) is not None
        assert len(stored_key(long.key)) == KEY_MAX


@pytest.fixture
async def pair(tmp_path: Path, postgresql_url: str) -> AsyncIterator[tuple[Stack, Stack]]:
    async with two_servers(tmp_path, postgresql_url) as (a, b):
        yield a, b


async def test_limits_hold_across_servers(pair: tuple[Stack, Stack]) -> None:
    a, b = pair
    await a.services.machines.register(
        NewMachine(machine_id="gate-1", name="Gate", price_amount=2500, capacity=10, stock=5)
    )
    await a.services.machines.apply_status("gate-1", {"state": "online", "boot": 1})
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=10) as on_b,
    ):
        servers = [on_a, on_b]
        # A shopper's wrong codes: 5 allowed, spread over both servers, then refused on either.
        wrong = {"code": "000000", "client_id": "guesser-0001", "machine_id": "gate-1"}
        for n in range(5):
            reply = await servers[n % 2].post("/api/lock-by-code", json=wrong)
            assert reply.status_code == 400, reply.text
        for http in servers:
            reply = await http.post("/api/lock-by-code", json=wrong)
            assert reply.status_code == 429 and int(reply.headers["Retry-After"]) > 0
        # The admin login throttle: 5 failures over both servers, then even the right password
        # waits, on either.
        for n in range(5):
            body = {"username": "admin", "password": f"wrong-password-{n}"}
            assert (await servers[n % 2].post("/api/admin/login", json=body)).status_code == 401
        right = {"username": "admin", "password": ADMIN_PASSWORD}
        for http in servers:
            assert (await http.post("/api/admin/login", json=right)).status_code == 429
        # Feedback: 10 attempts per shopper an hour, whichever server takes them.
        rate_it = {"client_id": "feedback-shopper", "rating": "up"}
        for n in range(10):
            reply = await servers[n % 2].post("/api/orders/ord_none/feedback", json=rate_it)
            assert reply.status_code == 404
        for http in servers:
            reply = await http.post("/api/orders/ord_none/feedback", json=rate_it)
            assert reply.status_code == 429
    async with a.services.ctx.db() as s:
        keys = set((await s.scalars(select(RateBudget.key))).all())
    assert {"client:guesser-0001", "feedback-client:feedback-shopper"} <= keys
    assert any(key.startswith("admin-login:admin|") for key in keys)


async def test_a_crowd_of_right_code_only_guesses_shares_the_fleet_budget(
    postgresql_url: str,
) -> None:
    """Twice the fleet's code-only budget at once, all right: those past the budget wait
    for the guesses in flight and are never refused, and the budget ends where it began."""
    async with two_stores(postgresql_url) as (store, _):
        guard = GuessGuard(store, GuessLimits.from_policy(VendPolicy()))
        crowd = 2 * VendPolicy().fleet_code_only_limit
        admitted, budget_spent = 0, asyncio.Event()

        async def shopper(n: int) -> None:
            nonlocal admitted
            charges, now = await guard.admit_in_turn(
                f"shopper-{n:04d}", "203.0.113.9", None, 100, lambda: 5000
            )
            admitted += 1
            if admitted >= guard.limits.code_only.capacity:
                budget_spent.set()
            # The first guesses hold the budget until it is spent, so the rest must wait.
            await budget_spent.wait()
            await guard.settle(charges, now, right=True)

        await asyncio.gather(*(shopper(n) for n in range(crowd)))
        assert admitted == crowd  # none refused
        fleet = Charge(FLEET_CODE_ONLY, guard.limits.code_only)
        assert await store.level(fleet, 5000) == guard.limits.code_only.capacity

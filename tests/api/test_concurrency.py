"""Races on real databases (migrated by Alembic): one code, one lock; one payment, one command."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from api.clock import FakeClock
from api.errors import InvalidCode, MachineBusy
from api.infra.db import create_engine, session_factory
from api.payments.test_gateway import TestGateway
from api.server.runtime import build_services
from api.services.container import Services
from api.services.locks import Lock
from api.services.machines import NewMachine
from api.services.policy import VendPolicy
from api.settings import Settings
from schema.models import Command, Order, Payment, VendSession

pytest_plugins = ["tests.support.db_fixtures"]

SHOPPERS = 50
VERIFIERS = 20


@pytest.fixture
async def services(migrated_url: str) -> AsyncIterator[Services]:
    engine = create_engine(Settings(database_url=migrated_url).async_database_url)
    try:
        yield build_services(session_factory(engine), FakeClock(), VendPolicy(), TestGateway("x"))
    finally:
        await engine.dispose()


async def online_machine(services: Services, machine_id: str = "m-1") -> str:
    """Register ``machine_id``, bring it online, and return the code on its display."""
    machine, _key = await services.machines.register(
        NewMachine(machine_id=machine_id, name="Lobby", price_amount=2500, capacity=10, stock=5)
    )
    applied = await services.machines.apply_status(
        machine_id, {"state": "online", "boot": 1, "fw": "1.0.0", "ts": services.ctx.clock.now()}
    )
    assert applied
    assert machine.display_code is not None
    return machine.display_code


async def count(services: Services, statement: object) -> int:
    async with services.ctx.db.begin() as s:
        return int(await s.scalar(statement))  # type: ignore[call-overload]


async def test_many_shoppers_one_code_one_lock(services: Services) -> None:
    code = await online_machine(services)

    async def shopper(i: int) -> Lock:
        return await services.locks.lock_by_code(code, f"client-{i:04d}", source=f"10.0.0.{i}")

    results = await asyncio.gather(*(shopper(i) for i in range(SHOPPERS)), return_exceptions=True)

    winners = [r for r in results if isinstance(r, Lock)]
    refused = [r for r in results if isinstance(r, MachineBusy | InvalidCode)]
    unexpected = [r for r in results if not isinstance(r, Lock | MachineBusy | InvalidCode)]
    assert unexpected == []
    assert len(winners) == 1
    assert len(refused) == SHOPPERS - 1
    active = await count(
        services,
        select(func.count()).select_from(VendSession).where(VendSession.status == "active"),
    )
    assert active == 1
    async with services.ctx.db.begin() as s:
        session = await s.get(VendSession, winners[0].session_id)
    assert session is not None and session.status == "active"
    assert session.client_id == f"client-{results.index(winners[0]):04d}"
    # The winning lock consumed the code: nobody can take it again.
    with pytest.raises(InvalidCode):
        await services.locks.lock_by_code(code, "client-late", source="10.0.1.1")


async def test_one_payment_verified_many_times_dispenses_once(services: Services) -> None:
    code = await online_machine(services)
    lock = await services.locks.lock_by_code(code, "client-0001", source="10.0.0.1")
    created = await services.orders.create(lock.session_id, "client-0001", 2)
    gateway = services.gateway
    assert isinstance(gateway, TestGateway)
    paid = gateway.complete_payment(created.gateway_order_id)
    proof = (paid["razorpay_order_id"], paid["razorpay_payment_id"], paid["razorpay_signature"])

    results = await asyncio.gather(
        *(services.orders.verify(*proof) for _ in range(VERIFIERS)), return_exceptions=True
    )

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert {r.id for r in results if isinstance(r, Order)} == {created.order_id}
    commands = await count(
        services,
        select(func.count()).select_from(Command).where(Command.order_id == created.order_id),
    )
    payments = await count(
        services,
        select(func.count()).select_from(Payment).where(Payment.order_id == created.order_id),
    )
    assert (commands, payments) == (1, 1)
    view = await services.orders.view(created.order_id)
    assert view["status"] in ("paid", "dispensing")
    assert view["refund"] is None

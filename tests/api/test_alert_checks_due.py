"""The stock checks ask the database for what is due and raise the same alerts as before:
each machine (and each slot of a machine with several) once per crossing of its threshold.

Every test runs on SQLite and on PostgreSQL.
"""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update

from api.clock import FakeClock
from api.payments.test_gateway import TestGateway
from api.services.alerts import Alerts
from api.services.catalogue import ProductFields
from api.services.container import Services
from api.services.machines import NewMachine
from api.services.policy import VendPolicy
from api.services.slots import SlotPlan, Slots
from api.settings import async_database_url
from schema.models import Alert, Machine
from tests.support.services import built_services

pytest_plugins = ["tests.support.db_fixtures"]

THRESHOLD = 3  # LOW_STOCK_THRESHOLD


@pytest.fixture
async def services(
    database_url: str, clock: FakeClock, gateway: TestGateway
) -> AsyncIterator[Services]:
    policy = VendPolicy(low_stock_threshold=THRESHOLD)
    async with built_services(async_database_url(database_url), clock, gateway, policy) as built:
        yield built


async def machine(services: Services, mid: str, stock: int, capacity: int = 10) -> None:
    await services.machines.register(
        NewMachine(machine_id=mid, name=mid, price_amount=2500, capacity=capacity, stock=stock)
    )


async def alerts(services: Services) -> list[tuple[str, str | None, str]]:
    async with services.ctx.db() as s:
        found = (await s.scalars(select(Alert).order_by(Alert.id))).all()
    return [(a.kind, a.machine_id, a.message) for a in found]


async def test_low_stock_machines_are_found_by_the_database(services: Services) -> None:
    await machine(services, "at-3", 3)  # at the default threshold
    await machine(services, "at-4", 4)  # above it
    await machine(services, "own-5", 5)  # above the default, under its own
    await machine(services, "own-1", 2)  # under the default, above its own
    await machine(services, "gone", 0)  # decommissioned
    await machine(services, "told", 1)  # alerted before
    checks = Alerts(services.ctx)
    await checks.set_threshold("own-5", 6, by="admin")
    await checks.set_threshold("own-1", 1, by="admin")
    await services.machines.remove("gone", by="admin")
    async with services.ctx.db.begin() as s:
        await s.execute(update(Machine).where(Machine.id == "told").values(low_stock_alerted=True))

    raised = await checks.check_low_stock()
    assert sorted((r["machine_id"], r["stock"], r["threshold"]) for r in raised) == [
        ("at-3", 3, 3),
        ("own-5", 5, 6),
    ]
    assert [(kind, mid) for kind, mid, _ in await alerts(services)] == [
        ("low_stock", "at-3"),
        ("low_stock", "own-5"),
    ]
    assert "at-3 (at-3) is low on stock: 3 of 10 left (threshold 3)." in [
        m for _, _, m in await alerts(services)
    ]
    assert await checks.check_low_stock() == []  # once per crossing


async def test_slots_due_are_found_by_the_database(services: Services) -> None:
    cola = await services.catalogue.create(ProductFields(name="Cola", price_amount=2000))
    chips = await services.catalogue.create(ProductFields(name="Chips", price_amount=1500))
    await machine(services, "six", 30, capacity=30)
    await machine(services, "one", 0)  # one slot at 0: the machine's own alert, not a slot's
    await machine(services, "off", 30, capacity=30)  # two slots, one of them disabled

    def plan(slot: str, motor: int, product: str, stock: int, enabled: bool = True) -> SlotPlan:
        return SlotPlan(slot, motor, product, 10, 8, enabled=enabled, stock=stock)

    slots = Slots(services.ctx)
    await slots.put(
        "six",
        (await slots.get("six"))["version"],
        [
            plan("A1", 1, cola["id"], 0),  # sold out
            plan("A2", 2, chips["id"], 2),  # low
            plan("A3", 3, cola["id"], 4),  # fine
            plan("A4", 4, chips["id"], 0, enabled=False),  # disabled
        ],
    )
    await slots.put(
        "off",
        (await slots.get("off"))["version"],
        [plan("A1", 1, cola["id"], 0), plan("A2", 2, chips["id"], 0, enabled=False)],
    )

    assert await slots.check_alerts() == 2
    assert [(kind, mid, message) for kind, mid, message in await alerts(services)] == [
        ("sold_out", "six", "six (six) slot A1 Cola is sold out."),
        ("low_stock", "six", "six (six) slot A2 Chips: 2 left."),
    ]
    assert await slots.check_alerts() == 0  # once until restocked

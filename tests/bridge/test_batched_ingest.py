"""The batch lane keeps every message, on both databases; results never queue behind it."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, insert, select

from api.clock import FakeClock
from api.infra.db import create_engine, session_factory
from api.mqtt.ingest import Ingest
from api.observability import metrics
from api.payments.test_gateway import TestGateway
from api.server.runtime import build_services
from api.services.container import Services
from api.services.machines import NewMachine
from api.services.policy import VendPolicy
from api.settings import Settings
from schema import messages, topics
from schema.models import Command, DeviceEvent, Machine, OutboxMessage, Telemetry
from tests.bridge.helpers import machine_row, order_status, pay

pytest_plugins = ["tests.support.db_fixtures"]

MACHINES = 500
TELEMETRY = 10_000
EVENTS = 1_000


@pytest.fixture
async def services(migrated_url: str) -> AsyncIterator[Services]:
    engine = create_engine(Settings(database_url=migrated_url).async_database_url)
    try:
        yield build_services(
            session_factory(engine), FakeClock(), VendPolicy(), TestGateway("test-secret")
        )
    finally:
        await engine.dispose()


@pytest.fixture
async def ingest(services: Services) -> AsyncIterator[Ingest]:
    lanes = Ingest(services)
    task = asyncio.create_task(lanes.run())
    try:
        yield lanes
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def add_fleet(services: Services, count: int) -> list[str]:
    """``count`` registered machines (rows written directly: key hashing is not under test)."""
    ids = [f"m{i:03d}" for i in range(count)]
    rows = [
        {
            "id": mid,
            "name": mid,
            "api_key_hash": "-",
            "key_revoked": False,
            "price_amount": 2500,
            "currency": "INR",
            "capacity": 10,
            "stock": 5,
            "restocked_total": 5,
            "dispensed_total": 0,
            "mode": "in_service",
            "code_failures": 0,
            "desired_version": 0,
            "online": False,
            "boot": 0,
            "low_stock_alerted": False,
            "offline_alerted": False,
            "created_at": 0,
        }
        for mid in ids
    ]
    async with services.ctx.db.begin() as s:
        await s.execute(insert(Machine), rows)
    return ids


async def count(services: Services, model: type[Telemetry] | type[DeviceEvent]) -> int:
    async with services.ctx.db() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_burst_from_500_machines_lands_completely(
    services: Services, ingest: Ingest, database_url: str
) -> None:
    ids = await add_fleet(services, MACHINES)
    for mid in ids:  # every machine comes online first (boot rule in order)
        await ingest.put(topics.status(mid), messages.status_online(1, "1.0.0", 1))
    poison = 0
    for i in range(TELEMETRY + EVENTS):
        mid = ids[i % MACHINES]
        if i % 11 == 10:
            body = {"type": "door_open", "code": f"e{i}", "detail": "", "ts": i}
            await ingest.put(topics.machine_topic(mid, "events"), json.dumps(body).encode())
        else:
            body = {"ts": i, "rssi": -60, "uptime_s": i}
            await ingest.put(topics.machine_topic(mid, "telemetry"), json.dumps(body).encode())
        if i % 2000 == 1000:  # malformed messages amid the burst
            await ingest.put(topics.machine_topic(mid, "telemetry"), b"{not json")
            poison += 1
    # A report the database cannot store on PostgreSQL (a version past 32 bits):
    # it must cost only itself, not its batch.
    huge = {"desired_version": 3_000_000_000, "mode": "idle", "stock": 1, "ts": 1}
    await ingest.put(topics.machine_topic(ids[0], "reported"), json.dumps(huge).encode())
    async with asyncio.timeout(120):
        await ingest.join()
    assert await count(services, Telemetry) == TELEMETRY
    assert await count(services, DeviceEvent) == EVENTS
    stats = ingest.stats
    assert stats.rejected == poison
    on_postgres = database_url.startswith("postgresql")
    assert stats.failed == (1 if on_postgres else 0)
    assert stats.batch_failures == (1 if on_postgres else 0)
    assert (
        stats.applied + stats.rejected + stats.failed == MACHINES + TELEMETRY + EVENTS + poison + 1
    )
    assert stats.batches <= (MACHINES + TELEMETRY + EVENTS) // 20  # batched, not one per message
    async with services.ctx.db() as s:
        online = await s.scalar(select(func.count()).where(Machine.online.is_(True)))
        states = await s.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic.like("%/state"))
        )
    assert online == MACHINES
    # One state per machine: a later change of m000 (its first reported mode)
    # superseded its unpublished one instead of adding a row.
    assert states == MACHINES


async def test_status_order_per_machine_is_kept_within_a_batch(
    services: Services, ingest: Ingest
) -> None:
    [mid] = await add_fleet(services, 1)
    lost_old = json.dumps({"state": "lost", "boot": 1}).encode()
    for body in (
        messages.status_online(1, "1.0.0", 1),
        messages.status_online(2, "1.0.1", 2),
        lost_old,  # an older boot's will arriving late never wins
    ):
        await ingest.put(topics.status(mid), body)
    await ingest.join()
    machine = await machine_row(services, mid)
    assert (machine.online, machine.boot, machine.fw) == (True, 2, "1.0.1")
    await ingest.put(topics.status(mid), json.dumps({"state": "lost", "boot": 2}).encode())
    await ingest.join()
    assert not (await machine_row(services, mid)).online


async def test_results_do_not_wait_behind_telemetry(services: Services, ingest: Ingest) -> None:
    gateway = services.gateway
    assert isinstance(gateway, TestGateway)
    machine, _key = await services.machines.register(
        NewMachine(machine_id="vend-1", name="Lobby", price_amount=2500, capacity=10, stock=5)
    )
    await services.machines.apply_status("vend-1", {"state": "online", "boot": 1})
    assert machine.display_code is not None
    order_id = await pay(services, gateway, machine.display_code, quantity=2)
    async with services.ctx.db() as s:
        cmd_id = await s.scalar(select(Command.id).where(Command.order_id == order_id))
    assert cmd_id is not None
    for i in range(TELEMETRY):  # a backlog of telemetry, queued first
        body = json.dumps({"ts": i, "rssi": -60}).encode()
        await ingest.put(topics.machine_topic("vend-1", "telemetry"), body)
    running = {"cmd_id": cmd_id, "status": "running", "dispensed": 1, "ts": 1}
    await ingest.put(topics.result("vend-1", cmd_id), json.dumps(running).encode())
    async with asyncio.timeout(30):
        await ingest.join_results()
    assert ingest.backlog > 0  # the telemetry is still queued ...
    view = await services.orders.view(order_id)
    assert (view["status"], view["dispensed"]) == ("dispensing", 1)  # ... the drop is shown
    assert await order_status(services, order_id) == "dispensing"
    await ingest.join()
    assert await count(services, Telemetry) == TELEMETRY


def _histogram(name: str) -> tuple[float, float]:
    """(count, sum) of an unlabelled histogram in this process's exposition."""
    found = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
        if sample.name in (f"{name}_count", f"{name}_sum")
    }
    return found[f"{name}_count"], found[f"{name}_sum"]


async def test_batch_sizes_and_lag_are_measured(services: Services, ingest: Ingest) -> None:
    await services.machines.register(
        NewMachine(machine_id="vend-9", name="Hall", price_amount=2500, capacity=10, stock=5)
    )
    batches, messages_in = _histogram("smartvend_ingest_batch_size")
    lags, _ = _histogram("smartvend_ingest_lag_seconds")
    done = ingest.stats.batches
    for i in range(600):
        body = json.dumps({"ts": i, "rssi": -60}).encode()
        await ingest.put(topics.machine_topic("vend-9", "telemetry"), body)
    async with asyncio.timeout(60):
        await ingest.join()
    committed = ingest.stats.batches - done
    assert committed >= 3  # at most BATCH_MAX a transaction
    count, total = _histogram("smartvend_ingest_batch_size")
    assert (count - batches, total - messages_in) == (committed, 600)
    lag_count, lag_sum = _histogram("smartvend_ingest_lag_seconds")
    assert lag_count - lags == committed and lag_sum > 0

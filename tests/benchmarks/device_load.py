"""Device messages at full speed: fanned in to one subscriber, and ingested by the bridge.

Publisher workers hold machines that each publish telemetry (QoS0) and events (QoS1),
alternating, every publish awaited before the next, on ``go N``.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from api.clock import SystemClock
from api.infra.db import create_engine, session_factory
from api.mqtt.accounts import SERVER_USERNAME
from api.mqtt.bridge import Bridge
from api.payments.test_gateway import TestGateway
from api.server.runtime import build_services
from api.services.container import Services
from api.services.machines import NewMachine
from api.services.policy import VendPolicy
from schema.models import DeviceEvent, Telemetry
from tests.benchmarks.measure import cpu_seconds
from tests.benchmarks.probes import Probe
from tests.benchmarks.procs import Worker
from tests.support.databases import migrate_async, sqlite_url

KINDS = ("telemetry", "events")  # what the publishers alternate between
FILTERS = ["smartvend/v1/machines/+/telemetry", "smartvend/v1/machines/+/events"]
STALL_S = 15.0  # nothing new for this long: the rest is not coming


def sent_by_kind(machines: int, each: int) -> dict[str, int]:
    """How many of each kind ``go each`` sends (machine ``n``-th message: KINDS[n % 2])."""
    return {kind: machines * len(range(i, each, len(KINDS))) for i, kind in enumerate(KINDS)}


@dataclass
class Delivery:
    seconds: float
    sent: dict[str, int]  # per kind
    got: dict[str, int]  # per kind

    @property
    def total(self) -> int:
        return sum(self.got.values())

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def __add__(self, other: "Delivery") -> "Delivery":
        """Both rounds' messages (and their time) together."""
        return Delivery(
            self.seconds + other.seconds,
            {k: self.sent.get(k, 0) + other.sent.get(k, 0) for k in KINDS},
            {k: self.got.get(k, 0) + other.got.get(k, 0) for k in KINDS},
        )

    def shown(self) -> str:
        return ", ".join(
            f"{kind} {self.got.get(kind, 0):,}/{self.sent.get(kind, 0):,}" for kind in KINDS
        )


async def wait_until(
    count: Callable[[], Coroutine[Any, Any, int]], expected: int, stall_s: float = STALL_S
) -> int:
    """Poll ``count()`` until it reaches ``expected`` or stops moving for ``stall_s``."""
    last, last_change = -1, time.monotonic()
    while True:
        current = await count()
        if current >= expected:
            return current
        if current != last:
            last, last_change = current, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return current
        await asyncio.sleep(0.05)


async def _go(publishers: list[Worker], each: int) -> None:
    for worker in publishers:
        worker.send(f"go {each}")
    await asyncio.gather(*(w.expect("done", 600) for w in publishers))


async def fan_in(
    probe: Probe, publishers: list[Worker], machines: int, each: int, pid: int
) -> tuple[Delivery, float]:
    """Every device message to one server subscriber; also the broker's CPU ms per 1,000."""
    await probe.client.subscribe([(f, 1) for f in FILTERS])
    before = dict(probe.by_kind)
    cpu_before = cpu_seconds(pid)
    sent = machines * each
    started = time.perf_counter()
    go = asyncio.create_task(_go(publishers, each))

    async def count() -> int:
        return sum(probe.by_kind[k] - before.get(k, 0) for k in KINDS)

    await wait_until(count, sent, stall_s=5.0)
    await go
    await probe.client.unsubscribe(FILTERS)
    got = {k: probe.by_kind[k] - before.get(k, 0) for k in KINDS}
    delivery = Delivery(probe.last_received - started, sent_by_kind(machines, each), got)
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / max(1, delivery.total) * 1000
    return delivery, cpu_ms


def _new_sqlite_url(workdir: Path) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    return sqlite_url(workdir, "ingest.db")


@contextlib.asynccontextmanager
async def ingest_services(workdir: Path, machine_ids: list[str]) -> AsyncIterator[Services]:
    """Services over a fresh, migrated SQLite file that knows ``machine_ids``."""
    url = _new_sqlite_url(workdir)
    await migrate_async(url)
    engine = create_engine(url.replace("sqlite:///", "sqlite+aiosqlite:///", 1))
    try:
        services = build_services(
            session_factory(engine), SystemClock(), VendPolicy(), TestGateway("bench-gateway")
        )
        for mid in machine_ids:
            await services.machines.register(
                NewMachine(machine_id=mid, name=f"Bench {mid}", price_amount=2000, capacity=20)
            )
        yield services
    finally:
        await engine.dispose()


async def _rows(services: Services) -> dict[str, int]:
    async with services.ctx.db() as s:
        telemetry = await s.scalar(select(func.count()).select_from(Telemetry))
        events = await s.scalar(select(func.count()).select_from(DeviceEvent))
    return {"telemetry": int(telemetry or 0), "events": int(events or 0)}


async def ingestion(
    services: Services,
    publishers: list[Worker],
    machines: int,
    each: int,
    host: str,
    port: int,
    password: str,
) -> Delivery:
    """The real bridge takes device messages into SQLite; counts the rows written."""
    bridge = Bridge(services, host=host, port=port, username=SERVER_USERNAME, password=password)
    task = asyncio.create_task(bridge.run())
    try:
        async with asyncio.timeout(30):
            await bridge.connected.wait()
        before = await _rows(services)
        sent = machines * each
        started = time.perf_counter()
        go = asyncio.create_task(_go(publishers, each))
        finished = started

        async def count() -> int:
            nonlocal finished
            rows = await _rows(services)
            total = sum(rows[k] - before[k] for k in KINDS)
            if total > last[0]:
                last[0], finished = total, time.perf_counter()
            return total

        last = [0]
        await wait_until(count, sent)
        await go
        rows = await _rows(services)
        got = {k: rows[k] - before[k] for k in KINDS}
        return Delivery(finished - started, sent_by_kind(machines, each), got)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

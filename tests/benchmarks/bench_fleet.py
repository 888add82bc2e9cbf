"""Fleet benchmark: N simulated machines connect at once; how long until the server sees
every one of them online in its database (through the broker and the bridge)."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from schema.models import Machine
from tests.benchmarks.device_load import wait_until
from tests.benchmarks.measure import say
from tests.benchmarks.procs import Worker, workers
from tests.benchmarks.report import Section, Table, Target
from tests.benchmarks.stacks import BenchStack

TARGET_S = 60.0
TIMEOUT_S = 300.0


@dataclass
class FleetResult:
    label: str
    machines: int
    spread_s: float
    clients_online_s: float = float("nan")  # every machine connected and subscribed
    server_online_s: float = float("nan")  # every machine online in the database
    online: int = 0


async def online_count(bench: BenchStack) -> int:
    async with bench.services.ctx.db() as s:
        found = await s.scalar(select(func.count()).select_from(Machine).where(Machine.online))
    return int(found or 0)


async def all_offline(bench: BenchStack) -> None:
    """Until the server has taken every machine for offline (their wills applied)."""

    async def gone() -> int:
        return bench.machines - await online_count(bench)

    await wait_until(gone, bench.machines, stall_s=60.0)


@contextlib.asynccontextmanager
async def online_fleet(
    bench: BenchStack, workdir: Path, spread_s: float, slot_counts: dict[str, int] | None = None
) -> AsyncIterator[tuple[Worker, FleetResult]]:
    """Start the fleet worker, wait until the server sees every machine online, keep it
    running inside; leaving it cuts the whole fleet's power at once (wills fire).

    ``slot_counts``: machines with several motors (the rest have one)."""
    result = FleetResult(bench.label, bench.machines, spread_s)
    config = {
        "host": bench.mqtt_host,
        "port": bench.mqtt_port,
        "credentials": str(bench.credentials),
        "machines": bench.machines,
        "spread_s": spread_s,
        # One flash per machine for the stack's life: started again, a machine
        # announces a higher boot, as real ones do (CONTRACT 1).
        "flash_dir": str(bench.credentials.with_name("flash")),
        "slot_counts": slot_counts or {},
    }
    say(f"fleet [{bench.label}]: starting {bench.machines} machines")
    async with workers("fleet", [config], workdir) as (fleet,):
        await fleet.expect("started", 120)
        started = time.monotonic()
        clients = asyncio.create_task(fleet.expect("online", TIMEOUT_S))
        deadline = started + TIMEOUT_S
        last_said = started
        count = 0
        while (count := await online_count(bench)) < bench.machines:
            now = time.monotonic()
            if now > deadline:
                break
            if now - last_said >= 5:
                say(f"fleet [{bench.label}]: {count}/{bench.machines} online in the database")
                last_said = now
            await asyncio.sleep(0.1)
        result.online = count
        if count >= bench.machines:
            result.server_online_s = time.monotonic() - started
        with contextlib.suppress(TimeoutError, RuntimeError):
            left = max(30.0, deadline - time.monotonic())
            result.clients_online_s = float((await asyncio.wait_for(clients, left))["seconds"])
        say(
            f"fleet [{bench.label}]: {count}/{bench.machines} online after "
            f"{result.server_online_s:.1f} s (clients: {result.clients_online_s:.1f} s)"
        )
        yield fleet, result


def section(results: list[FleetResult]) -> Section:
    table = Table(
        [
            "stack",
            "machines",
            "connect spread",
            "all connected and subscribed",
            "all online in the database",
        ]
    )
    for r in results:
        table.add(
            r.label,
            f"{r.machines:,}",
            f"{r.spread_s:.0f} s",
            f"{r.clients_online_s:.1f} s",
            f"{r.server_online_s:.1f} s"
            if r.online >= r.machines
            else f"only {r.online:,} after {TIMEOUT_S:.0f} s",
        )
    out = Section(
        "Fleet: machines coming online",
        "`device.simulator.Fleet` (the same controller as the firmware, one aiomqtt connection "
        "per machine) in its own process; all machines start at once, as after a broker "
        "restart. Each connects with its key (checked against the database on the embedded "
        "broker), subscribes, and publishes its retained `status` and `reported`; the bridge "
        "applies them, one transaction per message, which is most of the gap between the last "
        "two columns. The clock stops when the `machines` table shows every one online.",
        [table],
    )
    embedded = results[0]
    met = embedded.online >= embedded.machines and embedded.server_online_s <= TARGET_S
    out.targets.append(
        Target(
            f"{embedded.machines:,} machines online, {embedded.label}",
            f"<= {TARGET_S:.0f} s",
            f"{embedded.server_online_s:.1f} s",
            met,
            "Connections are accepted one by one by the broker's loop, which also runs the "
            "server; spreading reconnects (the firmware backs off with jitter) flattens the storm.",
        )
    )
    return out

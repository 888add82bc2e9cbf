"""SQLite writers: why the embedded stack's tails are long, and what would shorten them.

The server writes from many tasks at once (eight ingest shards, HTTP requests, the
outbox drain, the sweeper). SQLite admits one writer; a transaction that finds the
write lock taken is put to sleep by SQLite's busy handler (1, 2, 5, 10, ... ms) and
retries. This measures the service the bridge calls for every telemetry message
(``Machines.record_telemetry``) from several tasks at once, as the server does today,
and the same calls queued behind one ``asyncio.Lock``.
"""

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from api.services.container import Services
from tests.benchmarks.device_load import ingest_services
from tests.benchmarks.measure import Latency, say
from tests.benchmarks.report import Section, Table, ms, rate

WRITERS = 8  # the bridge's ingest shards


@dataclass
class WriteRun:
    label: str
    writers: int
    rate: float
    latency: Latency


async def _writes(
    services: Services, writers: int, each: int, lock: asyncio.Lock | None
) -> tuple[float, Latency]:
    latencies: list[float] = []

    async def writer(n: int) -> None:
        machine_id = f"w-{n}"
        for i in range(each):
            msg = {"ts": int(time.time()), "rssi": -60, "uptime_s": i}
            started = time.perf_counter()
            if lock is None:
                await services.machines.record_telemetry(machine_id, msg)
            else:
                async with lock:
                    await services.machines.record_telemetry(machine_id, msg)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(writers)))
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, Latency.of(latencies)


async def run(quick: bool, workdir: Path) -> Section:
    each = 30 if quick else 150
    runs: list[WriteRun] = []
    async with ingest_services(workdir / "sqlite", [f"w-{n}" for n in range(WRITERS)]) as services:
        for label, writers, lock in (
            ("one writer", 1, None),
            (f"{WRITERS} writers at once (as the server does)", WRITERS, None),
            (f"{WRITERS} writers queued on one asyncio.Lock", WRITERS, asyncio.Lock()),
        ):
            say(f"sqlite: {label}")
            per_writer = each * WRITERS // writers
            found_rate, latency = await _writes(services, writers, per_writer, lock)
            runs.append(WriteRun(label, writers, found_rate, latency))
            say(f"sqlite: {found_rate:,.0f} tx/s, p99 {latency.p99:.1f} ms")
    table = Table(["", "transactions/s", "p50", "p99", "max"])
    for r in runs:
        table.add(
            r.label, rate(r.rate, "tx/s"), ms(r.latency.p50), ms(r.latency.p99), ms(r.latency.max)
        )
    return Section(
        "SQLite: concurrent writers",
        f"`Machines.record_telemetry` (read the machine, update `last_seen`, insert a row: "
        f"one transaction, the app's engine with WAL and `BEGIN IMMEDIATE`), "
        f"{each * WRITERS:,} calls in each line. Not a target of its own: it explains the "
        f"ingestion rate above and the SQLite stack's tail latencies below.",
        [table],
        notes=[
            "With several writers at once, SQLite's busy handler puts the losers to sleep "
            "with growing back-offs, so throughput does not rise and the tail grows to "
            "hundreds of milliseconds. Queued on one in-process lock, the same work gets "
            "a short, bounded tail at the same rate: serialising write transactions in "
            "`api.db` when the database is SQLite would bound the tails. The rate is one "
            "transaction per row; writing many telemetry rows per transaction is what "
            "would raise it.",
        ],
    )

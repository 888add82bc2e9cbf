"""SQLite writers: one at a time, and many rows per transaction.

The server writes from many tasks at once (results, the batch lane, HTTP requests,
the outbox drain, the sweeper). SQLite admits one writer; ``api.infra.db`` queues write
transactions in-process (first come, first served) instead of letting them race
into SQLite's busy handler. This measures one telemetry row per transaction
(``Machines.record_telemetry``) from one task and from eight at once, and the
bridge's batch lane (``api.services.device_batch.apply_batch``), which writes a
batch of telemetry in one transaction.
"""

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from api.services.container import Services
from api.services.device_batch import Telemetry, apply_batch
from tests.benchmarks.device_load import ingest_services
from tests.benchmarks.measure import Latency, say
from tests.benchmarks.report import Section, Table, ms, rate

WRITERS = 8
BATCH = 250  # the batch lane's largest batch


@dataclass
class WriteRun:
    label: str
    writers: int
    rate: float
    latency: Latency


async def _batches(services: Services, rows: int) -> tuple[float, Latency]:
    """``rows`` telemetry messages in batches of BATCH; rows/s and latency per batch."""
    latencies: list[float] = []
    done = 0
    started = time.perf_counter()
    while done < rows:
        batch = [
            Telemetry(f"w-{n % WRITERS}", {"ts": int(time.time()), "rssi": -60, "uptime_s": n})
            for n in range(done, min(rows, done + BATCH))
        ]
        t0 = time.perf_counter()
        await apply_batch(services.ctx, batch)
        latencies.append(time.perf_counter() - t0)
        done += len(batch)
    return done / (time.perf_counter() - started), Latency.of(latencies)


async def _writes(
    services: Services, writers: int, each: int, lock: asyncio.Lock | None
) -> tuple[float, Latency]:
    latencies: list[float] = []

    async def writer(n: int) -> None:
        machine_id = f"w-{n}"
        for i in range(each):
            msg: dict[str, int | float] = {"ts": int(time.time()), "rssi": -60, "uptime_s": i}
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
        for label, writers in (
            ("one writer, a row per transaction", 1),
            (
                f"{WRITERS} writers at once, a row per transaction (queued by `api.infra.db`)",
                WRITERS,
            ),
        ):
            say(f"sqlite: {label}")
            per_writer = each * WRITERS // writers
            found_rate, latency = await _writes(services, writers, per_writer, None)
            runs.append(WriteRun(label, writers, found_rate, latency))
            say(f"sqlite: {found_rate:,.0f} rows/s, p99 {latency.p99:.1f} ms")
        label = f"the batch lane: {BATCH} rows per transaction"
        say(f"sqlite: {label}")
        found_rate, latency = await _batches(services, each * WRITERS * 10)
        runs.append(WriteRun(label, 1, found_rate, latency))
        say(f"sqlite: {found_rate:,.0f} rows/s, p99 {latency.p99:.1f} ms")
    table = Table(["", "rows/s", "p50 per transaction", "p99", "max"])
    for r in runs:
        table.add(
            r.label, rate(r.rate, "rows/s"), ms(r.latency.p50), ms(r.latency.p99), ms(r.latency.max)
        )
    return Section(
        "SQLite: writers",
        f"`Machines.record_telemetry` (read the machine, update `last_seen`, insert a row: "
        f"one transaction, the app's engine with WAL), {each * WRITERS:,} calls in each of "
        f"the first two lines; then {each * WRITERS * 10:,} telemetry messages through the "
        f"batch lane's transaction. Not a target of its own: it explains the ingestion "
        f"rates and the SQLite stack's tails.",
        [table],
        notes=[
            "Write transactions wait their turn in `api.infra.db` (one writer, first come first "
            "served) and run their statements on the event loop's thread, so eight writers "
            "at once get the same rate as one with a short, bounded tail, never SQLite's "
            "busy-handler back-offs. Many rows per transaction is what raises the rate.",
        ],
    )

"""The server's CPU against the size of its fleet: what the leader's periodic work costs.

    python -m tests.benchmarks.fleet_cpu --sizes 2000,5000,10000
    python -m tests.benchmarks.fleet_cpu --sizes 2000 --baseline /tmp/smartvend-main
    python -m tests.benchmarks.fleet_cpu --sizes 5000 --profile var/profiles

For each fleet size N: the moonshot's topology with one edge (a private PostgreSQL
holding N machines, a core Mosquitto the server connects to, an edge the machines
connect to), N simulated machines online (``tests.benchmarks.light_fleet``), then
``smartvend serve`` (one worker, default settings: alert checks every 30 s). The
server's CPU seconds (from /proc, the supervisor and its worker) are read over
``window_s`` with the machines quiet (connected, no telemetry), then over another
window with every machine sending telemetry every ``telemetry_s``.

``--baseline DIR`` runs the same measurement first with a server built from the
source tree in DIR (e.g. ``git archive main | tar -x -C DIR``: put first on the
server's ``PYTHONPATH``), then with this tree's, on the same database, brokers and
machines: a before/after table from one run. ``--profile DIR`` records each server
with py-spy (raw, ``--gil``) through its telemetry window (py-spy stops the server
to sample it: the CPU figures of a profiled run are a little higher).
"""

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.infra.db import create_engine, session_factory
from tests.benchmarks.bench_scale import count_online, count_telemetry
from tests.benchmarks.measure import load_average, raise_open_files_limit, say, tree_cpu
from tests.benchmarks.moonshot import MoonPlan, postgres_pids, topology, worker_settings
from tests.benchmarks.procs import Worker, workers
from tests.support.workers import Workers, serve_workers

ONLINE_TIMEOUT_S = 300.0
SETTLE_S = 10.0  # after the server's start (its republish) and after telemetry starts


@dataclass(frozen=True)
class CpuPlan:
    sizes: tuple[int, ...] = (2_000, 5_000, 10_000)
    window_s: float = 60.0
    telemetry_s: float = 60.0
    baseline: Path | None = None
    profile: Path | None = None


@dataclass
class CpuRow:
    machines: int
    source: str  # "before" (the baseline tree) or "after" (this tree)
    quiet_s: float = float("nan")  # server CPU seconds per minute, no telemetry
    telemetry_s: float = float("nan")  # the same, with telemetry
    pg_quiet_s: float = float("nan")  # PostgreSQL's CPU seconds per minute, no telemetry
    pg_telemetry_s: float = float("nan")
    messages: int = 0  # telemetry rows stored during the telemetry window
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _python_path(source: Path | None) -> Iterator[None]:
    """``source`` first on the server's import path while it starts (inherited env)."""
    before = os.environ.get("PYTHONPATH")
    if source is not None:
        os.environ["PYTHONPATH"] = str(source)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


async def _all_online(db: async_sessionmaker[AsyncSession], machines: int) -> None:
    deadline = time.monotonic() + ONLINE_TIMEOUT_S
    while (online := await count_online(db)) < machines:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {online:,} of {machines:,} machines came online")
        await asyncio.sleep(1.0)


async def _per_minute(pid: int, pg: list[int], window_s: float) -> tuple[float, float]:
    """CPU seconds per minute of ``pid``'s tree and of PostgreSQL's (``pg``) over ``window_s``."""
    before, pg_before = tree_cpu(pid), tree_cpu(*pg)
    await asyncio.sleep(window_s)
    server, database = tree_cpu(pid) - before, tree_cpu(*pg) - pg_before
    return server * 60.0 / window_s, database * 60.0 / window_s


async def _profiled(pid: int, out: Path, seconds: float) -> asyncio.subprocess.Process:
    spy = Path(sys.executable).parent / "py-spy"
    return await asyncio.create_subprocess_exec(
        str(spy),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--gil",
        "--format",
        "raw",
        "--duration",
        str(int(seconds)),
        "-o",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _measure(
    plan: CpuPlan,
    row: CpuRow,
    server: Workers,
    fleet: Worker,
    db: async_sessionmaker[AsyncSession],
    pg: list[int],
) -> None:
    pid = server.process.pid
    await asyncio.sleep(SETTLE_S)
    row.quiet_s, row.pg_quiet_s = await _per_minute(pid, pg, plan.window_s)
    fleet.send(f"steady {plan.telemetry_s}")
    await fleet.expect("steady", 60)
    await asyncio.sleep(SETTLE_S)
    spy = None
    if plan.profile is not None:
        plan.profile.mkdir(parents=True, exist_ok=True)
        out = plan.profile / f"fleet-cpu-{row.machines}-{row.source}.txt"
        spy = await _profiled(pid, out, plan.window_s)
    stored = await count_telemetry(db)
    row.telemetry_s, row.pg_telemetry_s = await _per_minute(pid, pg, plan.window_s)
    row.messages = await count_telemetry(db) - stored
    fleet.send("quiet")
    await fleet.expect("quiet", 60)
    if spy is not None:
        await spy.wait()
    say(
        f"fleet-cpu: {row.machines:,} machines, {row.source}: {row.quiet_s:.2f} CPU s/min "
        f"quiet, {row.telemetry_s:.2f} with telemetry ({row.messages:,} messages stored); "
        f"PostgreSQL {row.pg_quiet_s:.2f} / {row.pg_telemetry_s:.2f}"
    )


async def _one_size(plan: CpuPlan, machines: int, workdir: Path) -> list[CpuRow]:
    rows: list[CpuRow] = []
    moon = MoonPlan(machines=machines, edges=1, workers=1, telemetry_s=plan.telemetry_s)
    async with topology(moon, workdir) as (url, layout, credentials, _brokers):
        settings = worker_settings(url, layout, workdir)
        cfg = {"host": layout.host, "port": layout.edge_ports[0], "machines": credentials}
        engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
        db = session_factory(engine)
        try:
            async with workers("light", [{**cfg, "boot": 1}], workdir) as (fleet,):
                await fleet.expect("started", 120)
                sources = [("before", plan.baseline)] if plan.baseline else []
                for name, source in [*sources, ("after", None)]:
                    row = CpuRow(machines, name)
                    with _python_path(source):
                        async with serve_workers(1, settings, workdir, ONLINE_TIMEOUT_S) as server:
                            await _all_online(db, machines)
                            await _measure(plan, row, server, fleet, db, postgres_pids(url))
                    rows.append(row)
        finally:
            await engine.dispose()
    return rows


def table(rows: list[CpuRow], plan: CpuPlan) -> str:
    head = (
        f"| machines | server | CPU s/min, quiet | CPU s/min, telemetry every "
        f"{plan.telemetry_s:.0f} s | telemetry stored in {plan.window_s:.0f} s | "
        "PostgreSQL CPU s/min, quiet / telemetry |\n"
        "|---:|---|---:|---:|---:|---:|\n"
    )
    return head + "".join(
        f"| {r.machines:,} | {r.source} | {r.quiet_s:.2f} | {r.telemetry_s:.2f} | "
        f"{r.messages:,} | {r.pg_quiet_s:.2f} / {r.pg_telemetry_s:.2f} |\n"
        for r in rows
    )


async def run(plan: CpuPlan, workdir: Path) -> list[CpuRow]:
    rows: list[CpuRow] = []
    for machines in plan.sizes:
        size_dir = workdir / str(machines)
        size_dir.mkdir(parents=True)
        rows += await _one_size(plan, machines, size_dir)
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.fleet_cpu")
    parser.add_argument("--sizes", default="2000,5000,10000")
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--telemetry-s", type=float, default=60.0)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)
    sizes = tuple(int(n) for n in args.sizes.split(","))
    if max(sizes) > 10_000:
        raise SystemExit("at most 10,000 machines here: the host is shared")
    plan = CpuPlan(sizes, args.window_s, args.telemetry_s, args.baseline, args.profile)
    logging.basicConfig(level=logging.WARNING)
    raise_open_files_limit()
    say(f"fleet-cpu: load average {load_average()} at the start")
    with tempfile.TemporaryDirectory(prefix="smartvend-fleet-cpu-") as tmp:
        rows = asyncio.run(run(plan, Path(tmp)))
    say(f"fleet-cpu: load average {load_average()} at the end")
    print(table(rows, plan))


if __name__ == "__main__":
    main(sys.argv[1:])

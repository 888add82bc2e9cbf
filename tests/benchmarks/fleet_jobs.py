"""The leader's periodic jobs run directly, each timed in CPU, against the fleet size.

    python tests/benchmarks/fleet_jobs.py --sizes 2000,5000,10000
    PYTHONPATH=/tmp/smartvend-main python tests/benchmarks/fleet_jobs.py   # an older tree

For each size N: a private PostgreSQL holding N machines online (cloned as the
moonshot does), the runtime built as a serving worker builds it (default settings:
alert checks every 30 s, outgoing webhooks every 2 s), and every job of
``runtime.jobs()`` plus the daily-figures feed's refresh (every 5 s while anything
commits) run once to warm up, then ``RUNS`` times, timed with
``time.process_time()``: this process's CPU (the ORM, the driver's decoding, the
job's own Python), not PostgreSQL's. Nothing changes between runs, so what a job
costs here is what it costs a leader while the fleet is quiet.

Run by path, so that ``PYTHONPATH`` decides which tree's ``api`` it measures.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import update

from api.server.runtime import open_runtime
from api.services.ha_feed import HomeAssistantFeed
from api.services.provision import provision
from device.simulate import load_credentials
from schema.models import Machine
from tests.benchmarks.moonshot import PREFIX, _clone_fleet
from tests.support import stack
from tests.support.databases import migrate_async, postgres_server

RUNS = 3
FEED_REFRESH_S = 5.0  # the bridge's feed_refresh_s


async def _timed(work: Callable[[], Awaitable[object]]) -> float:
    """CPU seconds per run of ``work``, after one run to warm up."""
    await work()
    started = time.process_time()
    for _ in range(RUNS):
        await work()
    return (time.process_time() - started) / RUNS


async def one_size(machines: int) -> list[tuple[str, float, float]]:
    """``(job, interval_s, CPU s per run)`` of every job over ``machines`` machines."""
    with (
        tempfile.TemporaryDirectory(prefix="smartvend-fleet-jobs-") as tmp,
        postgres_server() as pg,
    ):
        workdir = Path(tmp)
        url = pg.url(await asyncio.to_thread(pg.create_database))
        await migrate_async(url)
        settings = stack.test_settings(
            workdir, database_url=url, alert_interval_s=30, webhook_interval_s=2
        )
        created = await provision(settings, 1, PREFIX, workdir / "machines.json")
        (template, _key), *_ = load_credentials(str(created))
        await _clone_fleet(url, template, machines)
        async with open_runtime(settings) as rt:
            ctx = rt.services.ctx
            async with ctx.db.begin() as s:
                await s.execute(update(Machine).values(online=True, last_seen=ctx.clock.now()))
            feed = HomeAssistantFeed(ctx.db, ctx.clock, None, ctx.calendar)
            await feed.snapshot()
            work = [(job.name, job.interval_s, job.work) for job in rt.jobs]
            work.append(("daily figures refresh", FEED_REFRESH_S, feed.refresh))
            return [(name, interval, await _timed(run)) for name, interval, run in work]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="fleet_jobs.py")
    parser.add_argument("--sizes", default="2000,5000,10000")
    sizes = [int(n) for n in parser.parse_args(argv).sizes.split(",")]
    if max(sizes) > 10_000:
        raise SystemExit("at most 10,000 machines here: the host is shared")
    print("| machines | job | every | CPU ms per run | CPU s per minute |")
    print("|---:|---|---:|---:|---:|")
    for machines in sizes:
        for name, interval, cpu in asyncio.run(one_size(machines)):
            print(
                f"| {machines:,} | {name} | {interval:.0f} s | {cpu * 1000:.1f} | "
                f"{cpu * 60 / interval:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])

"""Leader election: a PostgreSQL advisory lock, taken over within 5 s of a kill -9."""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import psycopg
import pytest

from api.infra import leader
from api.settings import Settings, async_database_url
from tests.support.databases import PostgresServer, sqlite_url

pytest_plugins = ["tests.support.db_fixtures"]

ROOT = Path(__file__).resolve().parents[2]
TAKEOVER_LIMIT_S = 5.0
# A worker of its own: campaigns, says "leader" once it leads, runs until killed.
CANDIDATE = """
import asyncio, sys
from api.infra.leader import AdvisoryLockLeader

async def main():
    candidate = AdvisoryLockLeader(sys.argv[1])
    candidate.on_change(lambda leads: print("leader" if leads else "follower", flush=True))
    await candidate.run(asyncio.Event())

asyncio.run(main())
"""


async def leads_within(candidate: leader.Leadership, within: float) -> float:
    """Seconds until ``candidate`` leads (fails after ``within``)."""
    started = time.monotonic()
    won = asyncio.Event()
    if candidate.is_leader:
        return 0.0
    candidate.on_change(lambda leads: won.set() if leads else None)
    async with asyncio.timeout(within):
        await won.wait()
    return time.monotonic() - started


async def test_sqlite_has_one_process_and_it_leads(tmp_path: Path) -> None:
    chosen = leader.for_settings(Settings(database_url=sqlite_url(tmp_path)))
    assert isinstance(chosen, leader.SoleLeader)
    async with leader.campaigning(chosen) as running:
        assert running.is_leader
    assert not chosen.is_leader


@pytest.mark.postgres
async def test_one_leader_among_candidates_and_a_successor_when_it_stops(
    postgresql_url: str,
) -> None:
    url = async_database_url(postgresql_url)
    assert isinstance(
        leader.for_settings(Settings(database_url=postgresql_url)), leader.AdvisoryLockLeader
    )
    first = leader.AdvisoryLockLeader(url, retry_s=0.1)
    second = leader.AdvisoryLockLeader(url, retry_s=0.1)
    async with leader.campaigning(first):
        assert first.is_leader
        async with leader.campaigning(second):
            # campaigning() returns after the second's first try, which the lock refused
            assert first.is_leader and not second.is_leader
            ran: list[str] = []

            async def work() -> None:
                ran.append("ran")

            await leader.leader_only(second, work)()
            assert ran == []
            await leader.leader_only(first, work)()
            assert ran == ["ran"]
        assert first.is_leader
    async with leader.campaigning(second):  # the first stopped: its lock is free
        assert second.is_leader


@pytest.mark.postgres
async def test_a_leader_whose_session_is_ended_steps_down_and_campaigns_again(
    postgresql_url: str, pg_server: PostgresServer
) -> None:
    url = async_database_url(postgresql_url)
    candidate = leader.AdvisoryLockLeader(url, retry_s=0.1, heartbeat_s=0.1)
    lost = asyncio.Event()
    candidate.on_change(lambda leads: None if leads else lost.set())
    async with leader.campaigning(candidate):
        assert candidate.is_leader
        database = postgresql_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_server.url(database), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted"
            )
        async with asyncio.timeout(5):
            await lost.wait()
        assert await leads_within(candidate, 5) < 5


@pytest.mark.postgres
async def test_a_killed_leader_is_replaced_within_five_seconds(postgresql_url: str) -> None:
    url = async_database_url(postgresql_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CANDIDATE,
        url,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            assert await process.stdout.readline() == b"leader\n"
        successor = leader.AdvisoryLockLeader(url)  # the defaults a worker runs with
        async with leader.campaigning(successor):
            assert not successor.is_leader
            os.kill(process.pid, signal.SIGKILL)
            took = await leads_within(successor, TAKEOVER_LIMIT_S)
        print(f"leader takeover after kill -9: {took:.2f} s")
        assert took < TAKEOVER_LIMIT_S
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()

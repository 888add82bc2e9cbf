"""One SQLite writer at a time, queued in-process; reads never wait for it."""

import asyncio
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.infra.db import Database, create_engine, session_factory
from api.settings import Settings
from schema.models import Base, Machine, Telemetry
from tests.support import databases

pytest_plugins = ["tests.support.db_fixtures"]

WRITERS = 8
TRANSACTIONS = 40


async def _machine_db(url: str) -> tuple[Database, AsyncEngine]:
    engine = create_engine(Settings(database_url=url).async_database_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    db = session_factory(engine)
    assert isinstance(db, Database)
    async with db.begin() as s:
        s.add(
            Machine(
                id="m-1",
                name="Lobby",
                api_key_hash="x",
                price_amount=2500,
                currency="INR",
                capacity=10,
                created_at=0,
            )
        )
    return db, engine


async def test_eight_concurrent_writers_never_see_database_is_locked(tmp_path: Path) -> None:
    db, engine = await _machine_db(databases.sqlite_url(tmp_path))
    assert db.writer is not None

    async def writer(n: int) -> None:
        for i in range(TRANSACTIONS):
            async with db.begin() as s:
                machine = await s.get(Machine, "m-1")
                assert machine is not None
                machine.last_seen = n * 1000 + i
                await s.execute(
                    insert(Telemetry).values(machine_id="m-1", ts=i, data={"writer": n})
                )

    try:
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        async with db() as s:
            rows = await s.scalar(select(func.count()).select_from(Telemetry))
        assert rows == WRITERS * TRANSACTIONS
        assert db.writer.waited > 0  # they really did queue rather than race
    finally:
        await engine.dispose()


async def test_a_read_does_not_wait_for_the_writer(tmp_path: Path) -> None:
    db, engine = await _machine_db(databases.sqlite_url(tmp_path))
    try:
        writing, release = asyncio.Event(), asyncio.Event()

        async def long_writer() -> None:
            async with db.begin() as s:
                machine = await s.get(Machine, "m-1")
                assert machine is not None
                machine.stock = 3
                await s.flush()  # holds SQLite's write lock from here to commit
                writing.set()
                await release.wait()

        task = asyncio.create_task(long_writer())
        await writing.wait()
        async with asyncio.timeout(5), db() as s:
            # A deferred transaction: it sees the last commit, not the open write.
            assert await s.scalar(select(Machine.stock).where(Machine.id == "m-1")) == 0
            mode = await s.scalar(text("PRAGMA journal_mode"))
        assert mode == "wal"
        release.set()
        await task
    finally:
        await engine.dispose()


async def test_postgresql_keeps_concurrent_writers(postgresql_url: str) -> None:
    engine = create_engine(Settings(database_url=postgresql_url).async_database_url)
    try:
        db = session_factory(engine)
        assert isinstance(db, Database)
        assert db.writer is None
    finally:
        await engine.dispose()

"""The notifier across processes: PostgreSQL LISTEN/NOTIFY between two notifiers.

Each notifier has its own connection, as two workers would; what one publishes
reaches the other's watchers, its own echo is not delivered twice, a payload
too long for NOTIFY still wakes the watcher, and a lost listener reconnects and
wakes every watcher to re-read.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from api.infra.changes_pg import MAX_PAYLOAD_BYTES, PgNotifier, asyncpg_dsn, decode, encode
from api.settings import async_database_url

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = [pytest.mark.postgres]


@contextlib.asynccontextmanager
async def listening(url: str) -> AsyncIterator[PgNotifier]:
    notifier = PgNotifier(asyncpg_dsn(async_database_url(url)), min_backoff_s=0.05)
    task = asyncio.create_task(notifier.run())
    try:
        async with asyncio.timeout(10):
            await notifier.listening.wait()
        yield notifier
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_payloads_fit_notify() -> None:
    assert decode(encode("order:o1", "paid") or "") == ("order:o1", "paid")
    assert decode(encode("fleet", "") or "") == ("fleet", "")
    assert encode("order:o1", "x" * MAX_PAYLOAD_BYTES) == "order:o1"  # the channel alone
    assert encode("c" * (MAX_PAYLOAD_BYTES + 1), "") is None


async def test_a_publication_reaches_the_other_process_once(postgresql_url: str) -> None:
    async with listening(postgresql_url) as a, listening(postgresql_url) as b:
        from_elsewhere: list[str] = []
        b.on_remote(from_elsewhere.append)  # e.g. the leader's outbox drain wakes up
        with a.subscribe("order:o1") as on_a, b.subscribe("order:o1") as on_b:
            a.publish("order:o1", "one")
            assert await on_a.wait(5) == ["one"]  # at once, in its own process
            assert await on_b.wait(5) == ["one"]
            # B's reply is committed after A's echo: A sees the reply alone, never its echo.
            b.publish("order:o1", "two")
            assert await on_b.wait(5) == ["two"]
            assert await on_a.wait(5) == ["two"]
            with b.subscribe("fleet") as fleet_on_b:
                a.publish("fleet", "x" * 9000)  # too long for NOTIFY: the channel still goes
                assert await fleet_on_b.wait(5) == [""]
                assert a.oversize == 1
            assert b.received == 2 and a.received == 1
            assert from_elsewhere == ["order:o1", "fleet"]


async def test_a_lost_listener_reconnects_and_wakes_its_watchers(postgresql_url: str) -> None:
    async with listening(postgresql_url) as a, listening(postgresql_url) as b:
        with b.subscribe("order:o2") as on_b:
            assert b._conn is not None
            victim = b._conn.get_server_pid()
            admin = await asyncpg.connect(asyncpg_dsn(async_database_url(postgresql_url)))
            try:
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", victim)
            finally:
                await admin.close()
            # Whatever was notified while it was away is lost: the watcher re-reads.
            assert await on_b.wait(10) == [""]
            assert b.connects == 2 and b._conn is not None
            assert b._conn.get_server_pid() != victim
            a.publish("order:o2", "after")
            assert await on_b.wait(5) == ["after"]

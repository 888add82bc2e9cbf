"""Which worker runs the singleton work: a PostgreSQL advisory lock decides.

Among several workers on one PostgreSQL database exactly one holds the session
advisory lock ``LOCK_KEY`` on a connection of its own; it is the leader and
runs the sweeper, the refunds, the reconciler, the alerts and the outbox drain.
The others try again every ``retry_s``. A leader that dies (even ``kill -9``)
closes its socket, PostgreSQL ends its session and frees the lock, and the next
try of another worker wins: takeover takes at most ``retry_s`` plus a connect.
A leader that cannot reach the database for ``heartbeat_s`` steps down at once.

On SQLite there is one process, and it always leads (:class:`SoleLeader`).
"""

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from api.observability import metrics
from api.settings import Settings

log = logging.getLogger(__name__)

# A fixed 64-bit key (signed, as PostgreSQL's bigint) naming SmartVend's leader lock.
# Advisory locks are per database, so two SmartVend databases never contend.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"smartvend/leader").digest()[:8], "big", signed=True)
FIRST_DECISION_TIMEOUT_S = 10.0


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...

    def on_change(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(is_leader)`` whenever leadership is won or lost."""

    async def run(self, decided: asyncio.Event) -> None:
        """Campaign until cancelled; set ``decided`` after the first try."""


class _Changes:
    def __init__(self) -> None:
        self._leader = False
        self._callbacks: list[Callable[[bool], None]] = []

    @property
    def is_leader(self) -> bool:
        return self._leader

    def on_change(self, callback: Callable[[bool], None]) -> None:
        self._callbacks.append(callback)

    def _set(self, leader: bool) -> None:
        if leader == self._leader:
            return
        self._leader = leader
        metrics.LEADER.set(1 if leader else 0)
        log.info("this worker %s the leader", "is now" if leader else "is no longer")
        for callback in self._callbacks:
            callback(leader)


class SoleLeader(_Changes):
    """The only process there is: leader from the start."""

    async def run(self, decided: asyncio.Event) -> None:
        self._set(True)
        decided.set()
        try:
            await asyncio.Event().wait()
        finally:
            self._set(False)


class AdvisoryLockLeader(_Changes):
    """Leader while holding ``pg_try_advisory_lock(key)`` on a dedicated connection."""

    def __init__(
        self,
        async_url: str,
        *,
        key: int = LOCK_KEY,
        retry_s: float = 0.5,
        heartbeat_s: float = 1.0,
    ) -> None:
        super().__init__()
        if make_url(async_url).get_backend_name() != "postgresql":
            raise ValueError("advisory-lock leadership needs PostgreSQL")
        self._url = async_url
        self._key = key
        self.retry_s = retry_s
        self.heartbeat_s = heartbeat_s

    async def run(self, decided: asyncio.Event) -> None:
        engine = create_async_engine(self._url, poolclass=NullPool)
        try:
            while True:
                try:
                    await self._campaign(engine, decided)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database went away: stand down, try again
                    log.warning("leader election lost its database connection: %s", exc)
                finally:
                    self._set(False)
                decided.set()
                await asyncio.sleep(self.retry_s)
        finally:
            await engine.dispose()

    async def _campaign(self, engine: AsyncEngine, decided: asyncio.Event) -> None:
        async with engine.connect() as raw:
            conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
            lock = text("SELECT pg_try_advisory_lock(:key)")
            while not await conn.scalar(lock, {"key": self._key}):
                decided.set()
                await asyncio.sleep(self.retry_s)
            self._set(True)
            decided.set()
            while True:  # hold the lock; a dead connection means we may no longer hold it
                await asyncio.sleep(self.heartbeat_s)
                async with asyncio.timeout(self.heartbeat_s * 2):
                    await conn.execute(text("SELECT 1"))


def for_settings(settings: Settings) -> Leadership:
    """Advisory-lock leadership on PostgreSQL; the sole process on SQLite."""
    url = settings.async_database_url
    if make_url(url).get_backend_name() == "postgresql":
        return AdvisoryLockLeader(url)
    return SoleLeader()


@contextlib.asynccontextmanager
async def campaigning(leadership: Leadership) -> AsyncIterator[Leadership]:
    """Run the election in the background; enter once the first try has decided."""
    decided = asyncio.Event()
    task = asyncio.create_task(leadership.run(decided))
    waiter = asyncio.ensure_future(decided.wait())
    try:
        try:
            async with asyncio.timeout(FIRST_DECISION_TIMEOUT_S):
                await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task.done():
            task.result()  # the election itself failed: say why
        yield leadership
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def leader_only(
    leadership: Leadership, work: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[object]]:
    """``work`` that does nothing in a worker that is not the leader."""

    async def run() -> object:
        if leadership.is_leader:
            return await work()
        return None

    return run

"""The database engine and the unit of work.

SQLite gets WAL, NORMAL sync, a busy timeout and foreign keys on every
connection; PostgreSQL runs at READ COMMITTED with row locks where the vend
rules need them.  Only the unit of work (``async with db.begin()``) commits.

SQLite has one writer at a time. Rather than letting write transactions race
for its lock (the losers sleep in the busy handler with growing back-offs),
``db.begin()`` queues them in-process, first come first served, and only a
queued writer starts with ``BEGIN IMMEDIATE`` and runs its statements on the
event loop's thread (``api.infra.sqlite_inline``). Reads (``async with db()``) take
no lock, begin a plain, deferred transaction (in WAL mode they never wait for
the writer) and run on aiosqlite's thread. PostgreSQL keeps real concurrency.
"""

import asyncio
import contextlib
import contextvars
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from api.infra.sqlite_inline import INLINE, connector

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for an already async URL (see ``api.settings.async_database_url``)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            kwargs["poolclass"] = StaticPool
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["async_creator"] = connector(database or ":memory:", timeout=10)
    else:
        # At most 30 connections a process, as before, but kept once opened: overflow
        # connections were closed on return and opened again by the next crowd (a
        # PostgreSQL backend and a TLS negotiation each time).
        kwargs["pool_size"] = 30
        kwargs["max_overflow"] = 0
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    else:
        event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
        event.listen(engine.sync_engine.pool, "checkin", _returned)
    return engine


# A pooled PostgreSQL connection idle this long is pinged before use; one used more
# recently is trusted. Pinging every checkout (``pool_pre_ping``) costs a round trip
# per transaction, and a shopper's lock makes several.
IDLE_PING_S = 2.0
_RETURNED = "smartvend_returned_at"


def _returned(_dbapi_connection: Any, record: Any) -> None:
    record.info[_RETURNED] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    returned = record.info.get(_RETURNED)
    if returned is not None and time.monotonic() - returned < IDLE_PING_S:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:  # the pool drops it and checks out another
        raise DisconnectionError(f"a pooled connection is gone: {error}") from error


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself, so transactions (and DDL) are real ones.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


# True inside a queued write transaction of this task (and the tasks it starts).
_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar("smartvend_writing", default=False)


def _sqlite_on_begin(connection: Any) -> None:
    # A writer takes SQLite's write lock up front (IMMEDIATE): no deadlock
    # between two transactions that both read, then decide to write. A reader
    # begins a deferred transaction, which never waits in WAL mode.
    # Straight to the driver: a statement through SQLAlchemy costs more than BEGIN does.
    cursor = connection.connection.dbapi_connection.cursor()
    cursor.execute("BEGIN IMMEDIATE" if _WRITING.get() else "BEGIN")
    cursor.close()


class WriterQueue:
    """One SQLite writer at a time, in arrival order (``asyncio.Lock`` is FIFO)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.waited = 0  # write transactions that had to queue

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if _WRITING.get():  # already this task's turn: a nested unit of work
            yield
            return
        if self._lock.locked():
            self.waited += 1
        async with self._lock:
            token = _WRITING.set(True)
            inline = INLINE.set(True)
            try:
                yield
            finally:
                INLINE.reset(inline)
                _WRITING.reset(token)


class Database(async_sessionmaker[AsyncSession]):
    """The session factory; ``begin()`` queues on ``writer`` when there is one (SQLite)."""

    writer: WriterQueue | None = None

    @contextlib.asynccontextmanager
    async def _queued_begin(self) -> AsyncIterator[AsyncSession]:
        assert self.writer is not None
        async with self.writer.turn(), super().begin() as session:
            yield session

    def begin(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:  # type: ignore[override]
        """A unit of work: commits on success, rolls back on error."""
        if self.writer is None:
            return super().begin()
        return self._queued_begin()


_WRITERS: "weakref.WeakKeyDictionary[Engine, WriterQueue]" = weakref.WeakKeyDictionary()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions of one runtime, with a ``Session`` class of their own.

    Session events (``after_commit``) are listened for on ``session_class(factory)``;
    a class per factory keeps one runtime's listeners off every other's sessions.
    """
    own: type[Session] = type("SmartVendSession", (Session,), {})
    factory = Database(engine, expire_on_commit=False, autoflush=True, sync_session_class=own)
    if engine.dialect.name == "sqlite":
        factory.writer = writer_queue(engine)
    return factory


def writer_queue(engine: AsyncEngine) -> WriterQueue:
    """The engine's one writer queue, shared by every factory over it."""
    queue = _WRITERS.get(engine.sync_engine)
    if queue is None:
        queue = _WRITERS[engine.sync_engine] = WriterQueue()
    return queue


def session_class(factory: async_sessionmaker[AsyncSession]) -> type[Session]:
    """The sync ``Session`` class behind ``factory``: the target for session events."""
    found: type[Session] = factory.kw.get("sync_session_class", Session)
    return found

"""The database engine and the unit of work.

SQLite gets WAL, NORMAL sync, a busy timeout and foreign keys on every
connection; PostgreSQL runs at READ COMMITTED with row locks where the vend
rules need them.  Only the unit of work (``async with db.begin()``) commits.
"""

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

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
        kwargs["connect_args"] = {"timeout": 10}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 20
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself, so transactions (and DDL) are real ones.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: no deadlock between two readers
    # that both decide to write, which plain BEGIN allows.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions of one runtime, with a ``Session`` class of their own.

    Session events (``after_commit``) are listened for on ``session_class(factory)``;
    a class per factory keeps one runtime's listeners off every other's sessions.
    """
    own: type[Session] = type("SmartVendSession", (Session,), {})
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=True, sync_session_class=own
    )


def session_class(factory: async_sessionmaker[AsyncSession]) -> type[Session]:
    """The sync ``Session`` class behind ``factory``: the target for session events."""
    found: type[Session] = factory.kw.get("sync_session_class", Session)
    return found

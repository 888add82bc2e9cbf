"""SQLite statements of a write transaction run on the event loop's own thread.

aiosqlite hands every operation to a thread of its own and back, which costs
more than the statement itself on a small database (two thread switches and a
wait for the GIL each time). Inside a queued write transaction (see
``api.infra.db``) the statements are short and nobody else in the process is writing,
so they run inline; everything else (reads, which may be long reports) still
goes through aiosqlite's thread and never blocks the loop.
"""

import contextvars
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite

INLINE: contextvars.ContextVar[bool] = contextvars.ContextVar("sqlite_inline", default=False)


class HybridConnection(aiosqlite.Connection):
    """An aiosqlite connection whose operations run inline while ``INLINE`` is set.

    Its worker thread is a daemon: a connection that was never closed (a task
    cancelled mid-transaction at shutdown) must not keep the process alive,
    waiting for work that will never come. Committed data is already on disk.
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._thread.daemon = True

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if INLINE.get() and self._running and self._connection is not None:
            return fn(*args, **kwargs)
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]


def connector(path: str, **kwargs: Any) -> Callable[[], HybridConnection]:
    """An ``async_creator`` for SQLAlchemy: connections usable from either thread."""

    def connect() -> sqlite3.Connection:
        found: sqlite3.Connection = sqlite3.connect(path, check_same_thread=False, **kwargs)
        return found

    def create() -> HybridConnection:
        return HybridConnection(connect, 64)

    return create

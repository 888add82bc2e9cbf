"""One server per SQLite database: a second one refuses to start and says which is running.

SQLite allows a single writer and the embedded broker and background work of
two servers would step on each other, so ``smartvend serve`` holds an
exclusive lock on ``<database>.lock`` for as long as it runs (the operating
system drops it when the process ends, however it ends).  PostgreSQL
deployments may run several servers and take no lock.
"""

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from api.errors import ConfigurationError
from api.settings import Settings


def lock_path(settings: Settings) -> Path | None:
    """``<database file>.lock`` for an SQLite file database; None for anything else."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database + ".lock")


def holder(settings: Settings) -> str | None:
    """Who holds the database now ("pid 123 since 12:00:01"), or None when it is free."""
    path = lock_path(settings)
    if path is None or not path.exists():
        return None
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def refusal(settings: Settings, who: str) -> ConfigurationError:
    return ConfigurationError(
        f"another SmartVend server ({who}) is already running on the database "
        f"{settings.database_url}. Stop it first (Ctrl-C in its terminal, or kill its pid), "
        "or give this one its own database with SMARTVEND_DATABASE_URL."
    )


@contextlib.contextmanager
def hold(settings: Settings) -> Iterator[None]:
    """Hold the database for this process; ConfigurationError when another server has it."""
    path = lock_path(settings)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise refusal(settings, handle.read().strip() or "another process") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)

"""The notifier across processes: PostgreSQL ``LISTEN``/``NOTIFY``.

Every process that serves on a PostgreSQL database holds one connection of its
own (asyncpg, outside the pool) that listens on :data:`PG_CHANNEL`. Publishing
delivers to this process's watchers at once and queues the notifier's channel
(and a payload, when it fits) for the other processes; a sender task sends
what piled up in one ``SELECT pg_notify(...)`` per wake-up, after the change
committed (never inside the transaction, which would serialise every commit
behind PostgreSQL's notification queue lock). Notifications this connection
sent itself come back and are ignored: they were delivered locally already.

A NOTIFY payload is at most 8,000 bytes; a watcher only needs to know *that*
its channel changed and reads the current state itself, so a payload that
would not fit is dropped and the channel alone is sent.

When the connection is lost (the server restarted, a network cut, a stuck
socket caught by the heartbeat) it reconnects with a capped backoff; what was
notified meanwhile is lost, so on every reconnect each local watcher is woken
to re-read once. Publishing never blocks and never fails, as in-process.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from api.infra.changes import Notifier
from api.settings import Settings

log = logging.getLogger(__name__)

PG_CHANNEL = "smartvend"
MAX_PAYLOAD_BYTES = 7999  # PostgreSQL's limit is "shorter than 8000 bytes"
SEPARATOR = "\n"
HEARTBEAT_S = 5.0
FIRST_CONNECT_TIMEOUT_S = 10.0
NOTIFY_MANY = "SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x"


def encode(channel: str, payload: str) -> str | None:
    """The NOTIFY payload for ``(channel, payload)``; the channel alone if too long; None if
    even the channel does not fit (never for SmartVend's channels)."""
    whole = channel + SEPARATOR + payload if payload else channel
    if len(whole.encode()) <= MAX_PAYLOAD_BYTES:
        return whole
    if len(channel.encode()) <= MAX_PAYLOAD_BYTES:
        return channel
    return None


def decode(text: str) -> tuple[str, str]:
    channel, _, payload = text.partition(SEPARATOR)
    return channel, payload


def asyncpg_dsn(async_url: str) -> str:
    """An asyncpg DSN from SmartVend's ``postgresql+asyncpg://`` URL."""
    url = make_url(async_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgNotifier(Notifier):
    """:class:`Notifier` whose publications also reach the other processes on the database."""

    def __init__(
        self,
        dsn: str,
        *,
        pg_channel: str = PG_CHANNEL,
        heartbeat_s: float = HEARTBEAT_S,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
    ) -> None:
        super().__init__()
        self._dsn = dsn
        self._pg_channel = pg_channel
        self._heartbeat_s = heartbeat_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._outgoing: dict[str, None] = {}  # an ordered set: duplicates collapse
        self._wake = asyncio.Event()
        self._conn: Any = None  # asyncpg.Connection while connected
        self.listening = asyncio.Event()
        self.sent = 0  # notifications sent to other processes
        self.received = 0  # notifications from other processes
        self.connects = 0
        self.oversize = 0  # payloads dropped for NOTIFY's limit (the channel still went)
        self._remote: list[Callable[[str], None]] = []

    def on_remote(self, callback: Callable[[str], None]) -> None:
        self._remote.append(callback)

    def publish(self, channel: str, payload: str = "") -> None:
        super().publish(channel, payload)
        text = encode(channel, payload)
        if text is None:
            log.warning("channel name too long for NOTIFY: %.60s...", channel)
            return
        if text == channel and payload:
            self.oversize += 1
        self._outgoing[text] = None
        self._wake.set()

    def _on_notify(self, _conn: Any, pid: int, _channel: str, text: str) -> None:
        conn = self._conn
        if conn is not None and pid == conn.get_server_pid():
            return  # our own: delivered locally when published
        self.received += 1
        channel, payload = decode(text)
        self._deliver(channel, payload)
        for callback in self._remote:
            callback(channel)

    async def run(self, first_try: asyncio.Event | None = None) -> None:
        """Listen and send until cancelled, reconnecting; ``first_try`` is set after the first
        connection attempt, whatever its outcome."""
        backoff = self._min_backoff_s
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=FIRST_CONNECT_TIMEOUT_S)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("live pages: cannot reach PostgreSQL to listen: %s", exc)
                if first_try is not None:
                    first_try.set()
                await asyncio.sleep(backoff)
                backoff = min(self._max_backoff_s, backoff * 2)
                continue
            try:
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(self._pg_channel, self._on_notify)
                self._conn = conn
                self.connects += 1
                if self.connects > 1:
                    log.info("live pages: listening again; every open page re-reads")
                    self._wake_all()
                self.listening.set()
                if first_try is not None:
                    first_try.set()
                backoff = self._min_backoff_s
                await self._send_until_lost(conn, lost)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("live pages: lost the PostgreSQL listener: %s", exc)
            finally:
                self.listening.clear()
                self._conn = None
                with contextlib.suppress(Exception):
                    conn.terminate()
            await asyncio.sleep(backoff)

    async def _send_until_lost(self, conn: Any, lost: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self._heartbeat_s
        while not lost.is_set():
            if not self._outgoing:
                self._wake.clear()
                waiters = [asyncio.ensure_future(self._wake.wait())]
                waiters.append(asyncio.ensure_future(lost.wait()))
                try:
                    await asyncio.wait(
                        waiters,
                        timeout=max(0.0, next_beat - loop.time()),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    for waiter in waiters:
                        waiter.cancel()
            if lost.is_set():
                return
            if self._outgoing:
                batch = list(self._outgoing)
                self._outgoing.clear()
                try:
                    async with asyncio.timeout(self._heartbeat_s):
                        await conn.execute(NOTIFY_MANY, self._pg_channel, batch)
                except BaseException:
                    for text in batch:  # not known to be sent: send again after reconnecting
                        self._outgoing.setdefault(text)
                    raise
                self.sent += len(batch)
            elif loop.time() >= next_beat:
                async with asyncio.timeout(self._heartbeat_s):
                    await conn.execute("SELECT 1")
                next_beat = loop.time() + self._heartbeat_s


def uses_postgres(settings: Settings) -> bool:
    return make_url(settings.async_database_url).get_backend_name() == "postgresql"


@contextlib.asynccontextmanager
async def open_notifier(settings: Settings) -> AsyncIterator[Notifier]:
    """The notifier for these settings: across processes on PostgreSQL, in-process on SQLite.

    On PostgreSQL it is entered once listening (or once the first try failed: it keeps
    trying in the background, and pages fall back on their own heartbeats meanwhile).
    """
    if not uses_postgres(settings):
        yield Notifier()
        return
    notifier = PgNotifier(asyncpg_dsn(settings.async_database_url))
    first_try = asyncio.Event()
    task = asyncio.create_task(notifier.run(first_try))
    try:
        waiter = asyncio.ensure_future(first_try.wait())
        try:
            await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task.done():
            task.result()
        yield notifier
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

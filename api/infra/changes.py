"""Changes pushed to whoever watches them: ``publish(channel, payload)`` / ``subscribe``.

In-process here; :mod:`api.infra.changes_pg` carries the same calls between processes
with PostgreSQL LISTEN/NOTIFY (a channel name and a short text payload, which is
all a watcher gets). Channels in use:
``order:{order_id}`` (the order, its payment, refund or command changed) and
``fleet`` (a machine, a lock or a sale changed). Publishing never blocks and
never fails: a subscriber keeps only the latest payloads, because a live page
needs to know *that* something changed and then reads the current state once.
"""

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterator

KEEP = 8  # payloads a slow subscriber keeps; older ones are superseded


class Subscription:
    """One watcher of one channel; ``wait`` returns what was published since."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.closed = False
        self._pending: deque[str] = deque(maxlen=KEEP)
        self._ready = asyncio.Event()

    def _deliver(self, payload: str) -> None:
        self._pending.append(payload)
        self._ready.set()

    def _close(self) -> None:
        self.closed = True
        self._ready.set()

    async def wait(self, idle_s: float | None = None) -> list[str]:
        """What was published since the last call, oldest first; [] after idle_s or on close."""
        if not self._pending and not self.closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle_s):
                    await self._ready.wait()
        self._ready.clear()
        out = list(self._pending)
        self._pending.clear()
        return out


class Notifier:
    """Channels to subscriptions, in one process."""

    def __init__(self) -> None:
        self._subs: defaultdict[str, set[Subscription]] = defaultdict(set)
        self.closed = False
        self.published = 0

    def publish(self, channel: str, payload: str = "") -> None:
        self.published += 1
        self._deliver(channel, payload)

    def _deliver(self, channel: str, payload: str) -> None:
        """Hand ``payload`` to this process's watchers of ``channel``."""
        for sub in self._subs.get(channel, ()):
            sub._deliver(payload)

    def _wake_all(self) -> None:
        """Every watcher re-reads (changes may have been missed, e.g. while disconnected)."""
        for channel in list(self._subs):
            self._deliver(channel, "")

    @contextlib.contextmanager
    def subscribe(self, channel: str) -> Iterator[Subscription]:
        sub = Subscription(channel)
        if self.closed:
            sub._close()
        self._subs[channel].add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]

    def on_remote(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(channel)`` for each change another process publishes (never here:
        in-process, nothing comes from elsewhere; see :mod:`api.infra.changes_pg`)."""

    def subscribers(self, channel: str | None = None) -> int:
        if channel is not None:
            return len(self._subs.get(channel, ()))
        return sum(len(s) for s in self._subs.values())

    def close(self) -> None:
        """Shutting down: every subscription ends, and new ones end at once."""
        self.closed = True
        for subs in self._subs.values():
            for sub in subs:
                sub._close()

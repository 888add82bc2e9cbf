"""Live streams (Server-Sent Events): pushed on commit, capped, with heartbeats.

A stream waits on a notifier channel instead of polling the database; it
sends a heartbeat comment when nothing happened for a while, and ends when the
server shuts down (the notifier closes every subscription). Open streams are
capped per client (source address) and overall; past a cap the answer is a
JSON error with Retry-After, so a page falls back to polling now and then.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.errors import StreamsFull, TooManyStreams
from api.http.deps import runtime, source_address
from api.infra.changes import Subscription

HEARTBEAT_S = 15.0
RETRY_AFTER_S = 10
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class StreamGate:
    """Counts open streams per client and overall; refuses past either cap."""

    def __init__(self, total: int, per_client: int, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.total = total
        self.per_client = per_client
        self.heartbeat_s = heartbeat_s
        self._open: Counter[str] = Counter()
        self._released = asyncio.Event()
        self.refused = 0

    @property
    def open(self) -> int:
        return sum(self._open.values())

    @contextlib.contextmanager
    def admit(self, client: str) -> Iterator[None]:
        if self._open[client] >= self.per_client:
            self.refused += 1
            raise TooManyStreams(
                f"at most {self.per_client} live pages per client; this page checks by itself",
                retry_after=RETRY_AFTER_S,
            )
        if self.open >= self.total:
            self.refused += 1
            raise StreamsFull(
                "the server is following as many live pages as it can; try again shortly",
                retry_after=RETRY_AFTER_S,
            )
        self._open[client] += 1
        try:
            yield
        finally:
            self._open[client] -= 1
            if self._open[client] <= 0:
                del self._open[client]
            self._released.set()

    async def wait_open_at_most(self, count: int) -> None:
        """Wait until no more than ``count`` streams are open (closed ones released)."""
        while self.open > count:
            self._released.clear()
            await self._released.wait()


class LiveStream(StreamingResponse):
    """An event stream that releases what it holds (cap, subscription) when it ends."""

    def __init__(
        self,
        content: AsyncIterator[str],
        on_close: Callable[[], None],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            content, media_type="text/event-stream", headers={**HEADERS, **(headers or {})}
        )
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


async def changes(sub: Subscription, heartbeat_s: float = HEARTBEAT_S) -> AsyncIterator[bool]:
    """True each time ``sub``'s channel changed, False when a heartbeat is due.

    Ends when the notifier closes (shutdown); a client that goes away cancels
    the stream, which ends this too.
    """
    while not sub.closed:
        changed = await sub.wait(heartbeat_s)
        if sub.closed:
            return
        yield bool(changed)


@contextlib.contextmanager
def opened(
    request: Request, channel: str
) -> Iterator[tuple[AsyncIterator[bool], contextlib.ExitStack]]:
    """Admit a stream for the request's client and subscribe to ``channel``.

    Yields the stream's :func:`changes` and an exit stack that owns the cap
    and the subscription: hand ``stack.pop_all().close`` to :class:`LiveStream`
    once the response is ready (an error before that releases both).
    """
    root = runtime(request)
    gate, notifier = root.streams, root.notifier
    with contextlib.ExitStack() as stack:
        stack.enter_context(gate.admit(source_address(request)))
        sub = stack.enter_context(notifier.subscribe(channel))
        yield changes(sub, gate.heartbeat_s), stack

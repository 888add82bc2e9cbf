"""The HTTP server's defences against idle and slow clients, and the log they cause.

``HeaderTimeoutProtocol`` (uvicorn's httptools protocol: its C parser costs a
fraction of h11's pure Python per request) closes a connection whose request
headers have not all arrived within ``HEADER_TIMEOUT_S`` of it opening or of its
previous response; uvicorn's own ``timeout_keep_alive`` closes idle keep-alive
connections. ``H11HeaderTimeoutProtocol`` does the same over h11, for a Python
without httptools. ``AcceptErrorFilter`` lets one "socket.accept() out of system
resource" record through per interval instead of one a second per listener, each
with a traceback.
"""

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency
    HttpToolsProtocol = H11Protocol  # type: ignore[misc,assignment]

HEADER_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5
ACCEPT_LOG_INTERVAL_S = 60.0


class _HeaderTimeout(asyncio.Protocol):
    """The header timer, over either of uvicorn's protocols (they share these names)."""

    header_timeout_s = HEADER_TIMEOUT_S
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._waiting_from: Any = self.cycle
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._waiting_from = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._waiting_from:  # a request's headers are in
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the next request's headers get the same time

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is self._waiting_from and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


class HeaderTimeoutProtocol(_HeaderTimeout, HttpToolsProtocol):
    pass


class H11HeaderTimeoutProtocol(_HeaderTimeout, H11Protocol):
    pass


class AcceptErrorFilter(logging.Filter):
    """At most one accept() resource error per interval; the count of the others."""

    def __init__(self, interval_s: float = ACCEPT_LOG_INTERVAL_S) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last = -interval_s
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "out of system resource" not in str(record.msg):
            return True
        now = time.monotonic()
        if now - self._last < self.interval_s:
            self.suppressed += 1
            return False
        self._last = now
        record.msg = (
            f"{record.msg} (too many open connections or files; "
            f"{self.suppressed} similar messages suppressed)"
        )
        record.exc_info = None
        record.exc_text = None
        self.suppressed = 0
        return True


def install_accept_error_filter() -> AcceptErrorFilter:
    found = AcceptErrorFilter()
    logging.getLogger("asyncio").addFilter(found)
    return found

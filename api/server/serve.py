"""Serving an ASGI app with uvicorn, as ``smartvend serve`` does."""

import contextlib
import logging
import socket
from typing import Any

import uvicorn

from api.http.slow_clients import KEEP_ALIVE_S, HeaderTimeoutProtocol, install_accept_error_filter
from api.observability import logs
from api.server import instance_lock
from api.settings import Settings


class _Server(uvicorn.Server):
    """uvicorn that ends the app's live streams first when it shuts down.

    uvicorn waits for every open response before the lifespan ends; an event
    stream never ends by itself, so closing the notifier ends them cleanly.
    """

    def __init__(self, config: uvicorn.Config, app: Any) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        close_streams(self._app)
        await super().shutdown(sockets)


def close_streams(app: Any) -> None:
    """End every live stream of ``app`` (a Starlette app whose lifespan started)."""
    notifier = getattr(getattr(app, "state", None), "notifier", None)
    if notifier is not None:
        notifier.close()


def server_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn as SmartVend runs it (tests too).

    Forwarded headers are SmartVend's to judge (``api.http.source`` and
    ``TRUSTED_PROXIES``): uvicorn's own ``proxy_headers`` would believe any
    ``X-Forwarded-For`` from loopback.
    """
    return uvicorn.Config(app, host=host, port=port, **(edge_options() | options))


def edge_options() -> dict[str, Any]:
    """uvicorn options every SmartVend process uses, one worker or several."""
    return {
        "log_level": "info",
        "proxy_headers": False,
        # httptools' parser (a dependency), with the header timeout.
        "http": HeaderTimeoutProtocol,
        # asyncio's own loop, not uvloop: on uvloop the MQTT client (aiomqtt over paho)
        # could miss a broker restart until its keepalive ran out, and commands and new
        # codes waited that long (tests/reliability/test_chaos.py caught it).
        "loop": "asyncio",
        "timeout_keep_alive": KEEP_ALIVE_S,
        # Live streams never end by themselves: a worker that is told to stop ends
        # them after this long (one process ends them at once: ``_Server``).
        "timeout_graceful_shutdown": 5,
    }


def configure_logging(log_format: str) -> None:
    """Logging for one server process: the format, and no floods of expected noise."""
    logs.configure(log_format)
    install_accept_error_filter()
    logging.getLogger("mqtt").addFilter(quiet_backlog)


def serve(app: Any, settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    configure_logging(settings.log_format)
    config = server_config(
        app,
        host or settings.http_host,
        port or settings.http_port,
        log_config=None,  # uvicorn's loggers go through logs.configure's handler
    )
    with instance_lock.hold(settings), contextlib.suppress(KeyboardInterrupt):
        # uvicorn re-raises Ctrl-C after a clean shutdown: stopping is no error here.
        _Server(config, app).run()
    return 0


def quiet_backlog(record: logging.LogRecord) -> bool:
    """aiomqtt warns of "pending publish calls" past ten in flight; republishing every
    machine's retained state after a (re)connect does that as a matter of course."""
    if record.levelno == logging.WARNING and "pending publish calls" in str(record.msg):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
    return True

"""Serving an ASGI app with uvicorn, as ``smartvend serve`` does."""

import logging
from typing import Any

import uvicorn

from api import instance_lock
from api.http.slow_clients import KEEP_ALIVE_S, HeaderTimeoutProtocol, install_accept_error_filter
from api.settings import Settings


def server_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn as SmartVend runs it (tests too).

    Forwarded headers are SmartVend's to judge (``api.http.source`` and
    ``TRUSTED_PROXIES``): uvicorn's own ``proxy_headers`` would believe any
    ``X-Forwarded-For`` from loopback.
    """
    options.setdefault("log_level", "info")
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=False,
        http=HeaderTimeoutProtocol,
        timeout_keep_alive=KEEP_ALIVE_S,
        **options,
    )


def serve(app: Any, settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("amqtt", "transitions"):  # per-connection chatter: warnings only
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_accept_error_filter()
    logging.getLogger("mqtt").addFilter(quiet_backlog)
    config = server_config(app, host or settings.http_host, port or settings.http_port)
    with instance_lock.hold(settings):
        uvicorn.Server(config).run()
    return 0


def quiet_backlog(record: logging.LogRecord) -> bool:
    """aiomqtt warns of "pending publish calls" past ten in flight; republishing every
    machine's retained state after a (re)connect does that as a matter of course."""
    if record.levelno == logging.WARNING and "pending publish calls" in str(record.msg):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
    return True

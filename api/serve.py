"""Serving an ASGI app with uvicorn, as ``smartvend serve`` does."""

import logging
from typing import Any

import uvicorn

from api import instance_lock
from api.settings import Settings


def serve(app: Any, settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("amqtt", "transitions"):  # per-connection chatter: warnings only
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("mqtt").addFilter(quiet_backlog)
    with instance_lock.hold(settings):
        uvicorn.run(
            app,
            host=host or settings.http_host,
            port=port or settings.http_port,
            proxy_headers=True,
            log_level="info",
        )
    return 0


def quiet_backlog(record: logging.LogRecord) -> bool:
    """aiomqtt warns of "pending publish calls" past ten in flight; republishing every
    machine's retained state after a (re)connect does that as a matter of course."""
    if record.levelno == logging.WARNING and "pending publish calls" in str(record.msg):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
    return True

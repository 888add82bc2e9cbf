"""Serving an ASGI app with uvicorn, as ``smartvend serve`` does."""

import logging
from typing import Any

import uvicorn

from api.settings import Settings


def serve(app: Any, settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("amqtt", "transitions"):  # per-connection chatter: warnings only
        logging.getLogger(noisy).setLevel(logging.WARNING)
    uvicorn.run(
        app,
        host=host or settings.http_host,
        port=port or settings.http_port,
        proxy_headers=True,
        log_level="info",
    )
    return 0

"""Serving an ASGI app with uvicorn, as ``smartvend serve`` does."""

import logging
import socket
from typing import Any

import uvicorn

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


def serve(app: Any, settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("amqtt", "transitions"):  # per-connection chatter: warnings only
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = uvicorn.Config(
        app,
        host=host or settings.http_host,
        port=port or settings.http_port,
        proxy_headers=True,
        log_level="info",
    )
    _Server(config, app).run()
    return 0

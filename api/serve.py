"""Serving an ASGI app with uvicorn, as ``smartvend serve`` does."""

from typing import Any

import uvicorn

from api import logs
from api.settings import Settings


def serve(app: Any, settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    logs.configure(settings.log_format)
    uvicorn.run(
        app,
        host=host or settings.http_host,
        port=port or settings.http_port,
        proxy_headers=True,
        log_level="info",
        log_config=None,  # uvicorn's loggers go through logs.configure's handler
    )
    return 0

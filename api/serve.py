"""``smartvend serve``: uvicorn running the full server (API, pages, MQTT)."""

import logging

import uvicorn

from api.settings import Settings

APP_FACTORY = "web.app:from_env"


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host or settings.http_host,
        port=port or settings.http_port,
        proxy_headers=True,
        log_level="info",
    )
    return 0

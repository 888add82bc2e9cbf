"""Run an ASGI app under a real uvicorn server on a free loopback port."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn

from api.http.slow_clients import KEEP_ALIVE_S
from api.server.serve import server_config
from tests.support.ports import free_port


@contextlib.asynccontextmanager
async def serve(app: Any, *, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` inside the running loop; yields its base URL."""
    port = port or free_port()
    config = server_config(app, "127.0.0.1", port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def client(url: str, timeout: float) -> httpx.AsyncClient:
    """An HTTP client that drops idle connections well before the server does.

    The server closes a keep-alive connection after ``KEEP_ALIVE_S`` idle; a
    request written just as that timer fires is lost with a ``ReadError``. Busy
    tests that pause between requests use this client so that they never reuse
    a connection the server may be closing.
    """
    limits = httpx.Limits(keepalive_expiry=KEEP_ALIVE_S / 2)
    return httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits)

"""Run an ASGI app under a real uvicorn server on a free loopback port."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

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

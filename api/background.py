"""Periodic work in the server's loop: deadlines, refunds, alerts."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(interval_s: float, name: str, work: Callable[[], Awaitable[object]]) -> None:
    """Run ``work`` every ``interval_s`` until cancelled; a failure is logged, not fatal."""
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; trying again in %.1f s", name, interval_s)
        await asyncio.sleep(interval_s)

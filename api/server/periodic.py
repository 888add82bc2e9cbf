"""Periodic work in the server's loop: deadlines, refunds, alerts."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


TASK_PREFIX = "periodic: "  # the asyncio task name of each periodic job, e.g. "periodic: deadlines"


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


def stop_if_cancelled() -> None:
    """Raise ``CancelledError`` when this task was told to stop but an await lost it.

    On Python 3.11 ``asyncio.wait_for`` (aiomqtt waits for acknowledgements with it)
    drops a cancel that arrives just as the awaited thing finishes. A task that loops
    over such awaits checks this each turn, so it still stops when told to.

    Only for a task that runs no ``TaskGroup`` of its own: on 3.11 a group whose child
    failed leaves its parent task with a cancel request counted.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

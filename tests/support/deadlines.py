"""Tests that overrun stop what they started; a run that is over always exits.

pytest-timeout interrupts a test with a signal. For an async test that lands in
the event loop's ``select()``: the test's coroutine is abandoned mid-await, its
``finally`` blocks never run, and the brokers, servers and subprocesses it
started live on, failing later tests and holding threads the interpreter waits
for at exit. So a little before that hard limit the test's own coroutine is
cancelled instead, and every ``async with`` unwinds; the hard limit stays as the
backstop for code that ignores cancellation.

And once the session has reported, the process gets ``EXIT_GRACE_S`` to exit on
its own; after that, the stacks of the threads still running are printed and it
exits with the session's status rather than hanging its caller.
"""

import asyncio
import faulthandler
import functools
import inspect
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

SHARE = 0.9  # of the pytest-timeout limit, for setup and the test's own code
EXIT_GRACE_S = 60.0

STARTED = pytest.StashKey[float]()
STATUS = pytest.StashKey[int]()


def hard_limit(item: pytest.Item) -> float:
    """The item's pytest-timeout limit in seconds (0: none)."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.args[0] if marker.args else marker.kwargs.get("timeout")
        if value is not None:
            return float(value)
    return float(item.config.getini("timeout") or 0)


def awaiting(task: "asyncio.Task[Any]") -> str:
    """Where ``task`` waits: its chain of awaits, outermost first."""
    where = []
    step: Any = task.get_coro()
    while step is not None:
        frame = getattr(step, "cr_frame", None) or getattr(step, "gi_frame", None)
        if frame is not None:
            where.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        step = getattr(step, "cr_await", None) or getattr(step, "gi_yieldfrom", None)
    return f"{task.get_name()}:\n" + "\n".join(where)


def with_deadline(
    item: pytest.Item, test: Callable[..., Awaitable[Any]], limit: float
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> Any:
        spent = time.monotonic() - item.stash.get(STARTED, time.monotonic())
        budget = max(limit * SHARE - spent, 1.0)
        seen: list[str] = []  # where every task waited when the time ran out
        loop = asyncio.get_running_loop()
        snapshot = loop.call_later(
            budget, lambda: seen.extend(awaiting(task) for task in asyncio.all_tasks())
        )
        deadline = asyncio.timeout(budget)
        try:
            async with deadline:
                return await test(*args, **kwargs)
        except TimeoutError:
            if not deadline.expired():
                raise
            where = "\n".join(seen)
            pytest.fail(
                f"still running after {limit * SHARE:.0f} s of its {limit:.0f} s limit "
                "(setup included); cancelled so that what it started was stopped. "
                f"Where its tasks waited:\n{where}"
            )
        finally:
            snapshot.cancel()

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(item.obj):
            continue
        limit = hard_limit(item)
        if limit > 0:
            item.obj = with_deadline(item, item.obj, limit)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> object:
    item.stash[STARTED] = time.monotonic()
    return (yield)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[STATUS] = int(exitstatus)


def force_exit(status: int) -> None:
    stuck = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    sys.stderr.write(
        f"\nthe test run did not exit {EXIT_GRACE_S:.0f} s after it ended; "
        f"threads still running: {stuck}\n"
    )
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(status)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    status = config.stash.get(STATUS, 1)
    watchdog = threading.Timer(EXIT_GRACE_S, force_exit, args=(status,))
    watchdog.daemon = True
    watchdog.start()

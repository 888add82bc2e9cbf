"""A server loop stops when told to, even when an await inside it loses the cancel."""

import asyncio

from api.server.periodic import stop_if_cancelled


async def test_a_loop_that_checks_stops_even_after_a_lost_cancel() -> None:
    """``asyncio.wait_for`` on Python 3.11 returns the result of an await that finished
    in the same turn as the cancel, and the cancel is gone; aiomqtt waits for its
    acknowledgements that way. The loop's own check still ends the task."""
    loop = asyncio.get_running_loop()
    turns = 0
    awaiting: asyncio.Future[int] | None = None
    ready = asyncio.Event()

    async def serve() -> None:
        nonlocal turns, awaiting
        while True:
            stop_if_cancelled()
            turns += 1
            awaiting = loop.create_future()
            ready.set()
            await asyncio.wait_for(awaiting, 10)  # the behaviour under test
            ready.clear()

    task = asyncio.create_task(serve())
    await ready.wait()
    assert awaiting is not None
    awaiting.set_result(1)  # what is awaited finishes...
    task.cancel()  # ...in the same turn as the cancel
    await asyncio.wait({task}, timeout=5)  # waits without passing a cancel on
    assert task.cancelled()
    assert turns <= 2  # at most one more turn after the lost cancel


async def test_a_task_not_told_to_stop_goes_on() -> None:
    ran = []

    async def once() -> None:
        stop_if_cancelled()
        ran.append(True)

    await asyncio.create_task(once())
    assert ran == [True]

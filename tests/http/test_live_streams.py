"""Order pages' live updates: pushed on commit, never polled; heartbeats, caps, shutdown."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from api.http.streams import StreamGate
from api.server import periodic as background
from tests.http.test_shopper_api import assert_error, paid_order
from tests.support.services import unfinished_commands
from tests.support.stack import Stack


def engine_of(stack: Stack) -> AsyncEngine:
    bind = stack.services.ctx.db.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    return bind


@contextlib.contextmanager
def counted_queries(stack: Stack) -> Iterator[list[str]]:
    """Every SQL statement the server runs while inside, but for its periodic jobs' (the
    deadline sweep runs every second whatever the pages do)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        task = asyncio.current_task()
        if task is None or not task.get_name().startswith(background.TASK_PREFIX):
            seen.append(statement)

    engine = engine_of(stack).sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def gate(stack: Stack) -> StreamGate:
    found: StreamGate = stack.runtime.streams
    return found


async def frames(stream: httpx.Response) -> AsyncIterator[str]:
    """Each SSE frame: ``order <json>`` for an event, ``:`` for a heartbeat comment."""
    kind = ""
    async for line in stream.aiter_lines():
        if line.startswith(":"):
            yield ":"
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield f"{kind} {line[6:]}"


async def test_a_change_is_pushed_and_an_idle_page_costs_no_queries(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    gate(stack).heartbeat_s = 0.1
    proof, order = await paid_order(stack, http, machine, quantity=1)
    await http.post("/verify-payment", json=proof)
    command = (await unfinished_commands(stack.services))[0]
    async with http.stream("GET", f"/api/orders/{order['order_id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        got = frames(stream)
        first = await anext(got)
        assert first.startswith("order ") and json.loads(first[6:])["status"] == "paid"
        with counted_queries(stack) as idle:
            assert [await anext(got) for _ in range(3)] == [":", ":", ":"]
        assert idle == []  # three heartbeats, not one query
        with counted_queries(stack) as pushed:
            await stack.services.dispense.apply_result(machine, command.id, "running", 0)
            frame = await anext(got)
        assert json.loads(frame[6:])["status"] == "dispensing"
        view_reads = [q for q in pushed if q.lstrip().upper().startswith("SELECT")]
        assert 0 < len(view_reads) <= 4  # the result's own work plus one read of the view
        await stack.services.dispense.apply_result(machine, command.id, "succeeded", 1)
        rest = [f async for f in got if f != ":"]
    assert json.loads(rest[-1][6:])["status"] == "dispensed"  # and the stream ended
    async with asyncio.timeout(10):
        await gate(stack).wait_open_at_most(0)


async def test_streams_are_capped_per_client_and_overall(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    _proof, order = await paid_order(stack, http, machine, quantity=1)
    url = f"/api/orders/{order['order_id']}/events"
    limits = gate(stack)
    limits.per_client, limits.total = 2, 100
    async with contextlib.AsyncExitStack() as held:
        for _ in range(2):
            stream = await held.enter_async_context(http.stream("GET", url))
            assert stream.status_code == 200
        refused = await http.get(url)
        assert_error(refused, 429, "too_many_streams")
        assert refused.headers["retry-after"] == "10"
        limits.per_client, limits.total = 100, 2
        full = await http.get(url)
        assert_error(full, 503, "streams_full")
        assert full.headers["retry-after"] == "10"
    # Closed streams give their places back.
    async with asyncio.timeout(10):
        await limits.wait_open_at_most(0)
    async with http.stream("GET", url) as stream:
        assert stream.status_code == 200
    assert limits.refused == 2


async def test_an_unknown_order_is_a_404_and_holds_no_place(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    response = await http.get("/api/orders/ord_missing/events")
    assert_error(response, 404, "order_not_found")
    assert gate(stack).open == 0


async def test_streams_end_cleanly_at_shutdown(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    _proof, order = await paid_order(stack, http, machine, quantity=1)
    async with http.stream("GET", f"/api/orders/{order['order_id']}/events") as stream:
        got = frames(stream)
        assert (await anext(got)).startswith("order ")
        stack.runtime.notifier.close()
        assert [f async for f in got] == []  # the response ended, no error
    async with asyncio.timeout(10):
        await gate(stack).wait_open_at_most(0)

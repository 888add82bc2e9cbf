"""The admin fleet view is pushed changes on commit; an idle view costs no queries."""

import json
from pathlib import Path

import anyio

from tests.admin.support import admin_client, admin_stack, register
from tests.http.test_live_streams import counted_queries, gate


async def test_the_fleet_view_is_pushed_a_change(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack, admin_client(stack) as admin:
        await register(stack.services, "lobby-1", stock=5)
        gate(stack).heartbeat_s = 0.1
        with anyio.fail_after(20):
            async with admin.stream(
                "GET", "/admin/events", headers={"Accept": "text/event-stream"}
            ) as stream:
                lines = stream.aiter_lines()

                async def next_frame() -> str:
                    async for line in lines:
                        if line.startswith(":"):
                            return ":"
                        if line.startswith("data: "):
                            return line[6:]
                    raise AssertionError("the stream ended")

                [row] = json.loads(await next_frame())
                assert row["stock"] == 5
                with counted_queries(stack) as idle:
                    assert [await next_frame() for _ in range(3)] == [":", ":", ":"]
                assert idle == []  # idle: heartbeats only, the database untouched
                await stack.services.machines.set_stock("lobby-1", 2)
                pushed = await next_frame()
                while pushed == ":":
                    pushed = await next_frame()
                [row] = json.loads(pushed)
                assert row["stock"] == 2

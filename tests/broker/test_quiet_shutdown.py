"""Stopping the server with machines still connected logs no warning.

A real ``smartvend serve`` with its embedded broker, simulated machines on it,
then SIGTERM: the log of the stop is read line by line.
"""

import contextlib
from pathlib import Path

from api.server.runtime import open_runtime
from tests.e2e import flow
from tests.support import stack
from tests.support.databases import migrate_async, sqlite_url
from tests.support.ports import free_port
from tests.support.workers import serve_workers, stop

MACHINES = ("quiet-1", "quiet-2")
STOPPING = "Shutting down"  # uvicorn's first line after SIGTERM
QUIET = ("debug", "info")


async def test_a_clean_stop_with_machines_connected_is_quiet(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    await migrate_async(url)
    async with open_runtime(stack.test_settings(tmp_path, database_url=url)) as rt:
        keys = [(mid, await flow.register(rt.services, mid)) for mid in MACHINES]
    port = free_port()
    settings = {
        "env": "test",
        "database_url": url,
        "secret_key": stack.SECRET,
        "var_dir": str(tmp_path / "var"),
        "mqtt_port": str(port),
        "alert_interval_s": "0",
    }
    async with contextlib.AsyncExitStack() as running:
        server = await running.enter_async_context(serve_workers(1, settings, tmp_path))
        fleet = await running.enter_async_context(flow.fleet(port, keys))
        for vm in (fleet.machine(mid) for mid in MACHINES):
            await vm.wait_for(vm.is_online, 30)  # connected, each with its will
        assert await stop(server.process), "the server did not stop by itself"
    said = [line for line in server.lines if line.get("message")]
    start = next(i for i, line in enumerate(said) if str(line["message"]).startswith(STOPPING))
    noisy = [line for line in said[start:] if str(line.get("level")).lower() not in QUIET]
    assert noisy == [], noisy
    assert not [line for line in server.raw if "not broadcasted" in line]
    assert server.said("Broker closed") or server.said("Finished server process")

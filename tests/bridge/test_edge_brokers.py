"""Edge Mosquittos bridged to a core one (``write_edge_configs``): a machine on any edge
reaches the server's account on the core, and the server's messages reach the machine."""

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from api.mqtt.accounts import SERVER_USERNAME
from api.mqtt.mosquitto import EdgeLayout, write_edge_configs
from api.services.container import Services
from schema import messages, topics
from tests.bridge.helpers import _config_dir, _started, device, mqtt
from tests.bridge.test_vend import register
from tests.support.brokers import mosquitto_binary
from tests.support.ports import free_port

pytestmark = pytest.mark.mosquitto
SERVER_PASSWORD = "s3cret-server-password-for-the-core"


@contextlib.asynccontextmanager
async def core_and_edges(services: Services, edges: int) -> AsyncIterator[EdgeLayout]:
    out_dir = _config_dir()
    layout = EdgeLayout(
        core_port=free_port(),
        server_port=free_port(),
        edge_ports=tuple(free_port() for _ in range(edges)),
        edge_username="edge",
        edge_password="an-edge-password-long-enough",
    )
    paths = await write_edge_configs(
        services.ctx.db,
        out_dir,
        layout,
        server_username=SERVER_USERNAME,
        server_password=SERVER_PASSWORD,
        assign=lambda mid: int(mid.rsplit("-", 1)[1]),  # vm-1 on edge 1, vm-2 on edge 2
    )
    for n in range(1, edges + 1):  # each edge knows its own machines only
        passwd = (paths[f"edge-{n}"].parent / "passwd").read_text()
        assert [line.split(":")[0] for line in passwd.splitlines()] == [f"vm-{n}"]
    assert sorted(paths) == ["core", *(f"edge-{n}" for n in range(1, edges + 1))]
    procs: list[asyncio.subprocess.Process] = []
    try:
        ports = [layout.core_port, *layout.edge_ports]
        for name, port in zip(paths, ports, strict=True):
            proc = await asyncio.create_subprocess_exec(
                mosquitto_binary(),
                "-c",
                str(paths[name]),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            procs.append(proc)
            await _started(proc, port)
            assert proc.returncode is None, f"{name} did not start"
        yield layout
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        shutil.rmtree(out_dir, ignore_errors=True)


async def test_machines_on_two_edges_talk_with_the_server_on_the_core(
    services: Services,
) -> None:
    keys = {mid: await register(services, mid) for mid in ("vm-1", "vm-2")}
    async with (
        core_and_edges(services, 2) as layout,
        mqtt("127.0.0.1", layout.server_port, SERVER_USERNAME, SERVER_PASSWORD) as server,
    ):
        await server.subscribe(topics.machine_filter("status"), qos=1)
        for (mid, key), port in zip(keys.items(), layout.edge_ports, strict=True):
            async with device("127.0.0.1", port, mid, key, boot=1) as machine:
                await machine.subscribe(topics.machine_filter("cmd", mid), qos=1)
                online = messages.status_online(1, "1.0.0", 1)
                # Up: the edge's bridge connects to the core a moment after the edge
                # listens, and forwards what is published from then on.
                got = None
                for _attempt in range(20):
                    await machine.publish(topics.status(mid), online, qos=1, retain=True)
                    got = await _next(server, topics.status(mid), 1.0)
                    if got is not None:
                        break
                assert got == online
                # Down: a command the server publishes on the core reaches this machine only.
                body = b'{"probe": 1}'
                await server.publish(topics.cmd(mid, "c-1"), body, qos=1)
                assert await _next(machine, topics.cmd(mid, "c-1"), 10.0) == body


async def _next(client: aiomqtt.Client, topic: str, within: float) -> bytes | None:
    """The payload of the next message on ``topic`` within ``within`` s, or None."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            async for message in client.messages:
                if message.topic.value == topic and isinstance(message.payload, bytes):
                    return message.payload
    return None

"""Mosquitto as several server workers need it: own client ids, one copy of each message."""

import asyncio
import contextlib
import secrets
import shutil
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from broker import mosquitto
from broker.passwords import hash_secret
from schema import topics
from tests.e2e.external import readable_dir, start
from tests.support.ports import free_port

pytestmark = pytest.mark.mosquitto
MESSAGES = 30


@contextlib.asynccontextmanager
async def two_listeners(keys: dict[str, str]) -> AsyncIterator[tuple[int, int]]:
    """Mosquitto with the machines' listener and the workers' one; yields both ports."""
    folder = readable_dir()
    server = [("smartvend-server", "server", hash_secret(keys["smartvend-server"]))]
    machines = [("m-1", "machine", hash_secret(keys["m-1"]))]
    files = {
        "passwd": mosquitto.password_file(machines),
        "acl": mosquitto.acl_file(machines),
        "passwd-server": mosquitto.password_file(server),
        "acl-server": mosquitto.acl_file(server),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o644)
    process = None
    try:
        for _attempt in range(3):
            device_port, server_port = free_port(), free_port()
            conf = folder / "mosquitto.conf"
            conf.write_text(
                mosquitto.mosquitto_conf(
                    port=device_port,
                    host="127.0.0.1",
                    password_file=str(folder / "passwd"),
                    acl_file=str(folder / "acl"),
                    persistence_dir=None,
                    server_listener=mosquitto.ServerListener(
                        server_port,
                        "127.0.0.1",
                        str(folder / "passwd-server"),
                        str(folder / "acl-server"),
                    ),
                )
            )
            conf.chmod(0o644)
            process = await start(conf, folder / "mosquitto.log", server_port)
            if process is not None:
                break
        assert process is not None, (folder / "mosquitto.log").read_text()
        yield device_port, server_port
    finally:
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def worker(port: int, key: str, client_id: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username="smartvend-server",
        password=key,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V311,
        timeout=10,
    )


async def test_workers_keep_their_own_ids_and_share_the_fleets_messages() -> None:
    keys = {"smartvend-server": secrets.token_urlsafe(24), "m-1": secrets.token_urlsafe(24)}
    shared = topics.shared("smartvend", topics.machine_filter("telemetry"))
    async with (
        two_listeners(keys) as (device_port, server_port),
        worker(server_port, keys["smartvend-server"], "smartvend-server-a") as first,
        worker(server_port, keys["smartvend-server"], "smartvend-server-b") as second,
    ):
        for client in (first, second):
            await client.subscribe(shared, qos=1)
        received: dict[str, list[bytes]] = {"a": [], "b": []}
        done = asyncio.Event()

        async def collect(name: str, client: aiomqtt.Client) -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                received[name].append(message.payload)
                if sum(map(len, received.values())) == MESSAGES:
                    done.set()

        async with (
            asyncio.TaskGroup() as tg,
            aiomqtt.Client(
                "127.0.0.1", device_port, username="m-1", password=keys["m-1"], identifier="m-1"
            ) as machine,
        ):
            readers = [tg.create_task(collect("a", first)), tg.create_task(collect("b", second))]
            for n in range(MESSAGES):
                await machine.publish(topics.telemetry("m-1"), str(n).encode(), qos=1)
            async with asyncio.timeout(10):
                await done.wait()
            for reader in readers:
                reader.cancel()
        # Both stayed connected (no takeover), each got a share, no message twice.
        assert received["a"] and received["b"]
        everything = sorted(received["a"] + received["b"], key=int)
        assert everything == [str(n).encode() for n in range(MESSAGES)]

        # The machines' listener does not know the server's account at all.
        with pytest.raises(aiomqtt.MqttError):
            async with worker(device_port, keys["smartvend-server"], "smartvend-server-c"):
                pass

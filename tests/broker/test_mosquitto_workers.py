"""Mosquitto as several server workers need it: own client ids, one copy of each message."""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from broker import mosquitto
from broker.passwords import hash_secret
from schema import topics
from tests.e2e.external import mosquitto_two_ports

pytestmark = pytest.mark.mosquitto
MESSAGES = 30


@contextlib.asynccontextmanager
async def two_listeners(keys: dict[str, str]) -> AsyncIterator[tuple[int, int]]:
    """Mosquitto with the machines' listener and the workers' one; yields both ports."""
    server = [("smartvend-server", "server", hash_secret(keys["smartvend-server"]))]
    machines = [("m-1", "machine", hash_secret(keys["m-1"]))]
    files = {
        "passwd": mosquitto.password_file(machines),
        "acl": mosquitto.acl_file(machines),
        "passwd-server": mosquitto.password_file(server),
        "acl-server": mosquitto.acl_file(server),
    }

    def conf(folder: Path, device_port: int, server_port: int) -> str:
        return mosquitto.mosquitto_conf(
            port=device_port,
            host="127.0.0.1",
            password_file=str(folder / "passwd"),
            acl_file=str(folder / "acl"),
            persistence_dir=None,
            server_listener=mosquitto.ServerListener(
                server_port, "127.0.0.1", str(folder / "passwd-server"), str(folder / "acl-server")
            ),
        )

    async with mosquitto_two_ports(files, conf) as ports:
        yield ports


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

"""The server against services it does not run itself: PostgreSQL and Mosquitto.

The database is migrated with Alembic (as ``smartvend migrate`` does), the
machines are registered before the broker starts (Mosquitto reads its accounts
at start), and Mosquitto runs from the files ``write_mosquitto_config`` writes
for the server's account (``server_credentials``) on a free loopback port.
"""

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from api.mqtt.accounts import server_credentials
from api.mqtt.mosquitto import CONF_FILE, write_mosquitto_config
from api.server.runtime import open_runtime
from api.services.container import Services
from tests.e2e import flow
from tests.support.brokers import mosquitto_binary
from tests.support.databases import migrate_async
from tests.support.ports import free_port
from tests.support.stack import Stack, running_stack, test_settings

START_TIMEOUT_S = 10.0


@dataclass
class ExternalStack:
    stack: Stack
    mqtt_port: int
    keys: dict[str, str]


@contextlib.asynccontextmanager
async def mosquitto_from_config(
    tmp: Path, url: str, machines: Iterable[tuple[str, int]]
) -> AsyncIterator[tuple[int, dict[str, str]]]:
    """Register ``(machine_id, stock)`` machines in ``url``; run Mosquitto for them.

    Yields the broker's port and the machines' API keys.
    """

    async def register(services: Services) -> dict[str, str]:
        return {mid: await flow.register(services, mid, stock=stock) for mid, stock in machines}

    async with mosquitto_for_database(tmp, url, register) as found:
        yield found


@contextlib.asynccontextmanager
async def mosquitto_for_database(
    tmp: Path, url: str, register: Callable[[Services], Awaitable[dict[str, str]]]
) -> AsyncIterator[tuple[int, dict[str, str]]]:
    """Machines that ``register`` adds to ``url``, and Mosquitto configured from the
    database for them (the way ``smartvend mosquitto-config`` writes it).

    Yields the broker's port and what ``register`` returned (the machines' API keys).
    """
    settings = test_settings(tmp, database_url=url)
    async with open_runtime(settings) as rt:
        keys = await register(rt.services)
    creds = server_credentials(settings)

    async def configure(folder: Path, ports: list[int]) -> Path:
        async with open_runtime(settings) as rt:
            await write_mosquitto_config(
                rt.services.ctx.db,
                folder,
                port=ports[0],
                host="127.0.0.1",
                server_username=creds.username,
                server_password=creds.password,
            )
        return folder / CONF_FILE

    async with running_mosquitto(1, configure) as (port,):
        yield port, keys


@contextlib.asynccontextmanager
async def running_mosquitto(
    count: int, configure: Callable[[Path, list[int]], Awaitable[Path]]
) -> AsyncIterator[list[int]]:
    """Mosquitto listening on ``count`` free loopback ports; yields them.

    ``configure(folder, ports)`` writes the config (and whatever it needs) into a
    fresh folder Mosquitto can read, and returns the config file. Started up to
    three times with new ports, since a free port may be taken before Mosquitto
    binds it (the last port is the one waited for). Stopped, and the folder
    removed, on exit.
    """
    folder = readable_dir()
    log = folder / "mosquitto.log"
    process: asyncio.subprocess.Process | None = None
    try:
        for _attempt in range(3):
            ports = [free_port() for _ in range(count)]
            process = await start(await configure(folder, ports), log, ports[-1])
            if process is not None:
                break
        if process is None:
            raise RuntimeError(f"mosquitto did not start:\n{log.read_text()}")
        yield ports
    finally:
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def readable_dir() -> Path:
    """A fresh directory Mosquitto can read: started as root, it reads as its own user."""
    path = Path(tempfile.mkdtemp(prefix="smartvend-e2e-mosquitto-"))
    path.chmod(0o755)
    return path


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def start(conf: Path, log: Path, port: int) -> asyncio.subprocess.Process | None:
    """Mosquitto listening on ``port``, or None when it could not take the port."""
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            mosquitto_binary(),
            "-c",
            str(conf),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while loop.time() < deadline and process.returncode is None:
        if await asyncio.to_thread(port_open, port):
            return process
        await asyncio.sleep(0.02)
    if process.returncode is None:
        process.terminate()
    await process.wait()
    return None


@contextlib.asynccontextmanager
async def mosquitto_two_ports(
    files: dict[str, str], conf_for: Callable[[Path, int, int], str]
) -> AsyncIterator[tuple[int, int]]:
    """Mosquitto with ``files`` written beside its config and two listeners on free
    ports (``conf_for(folder, first, second)`` writes the config); yields both ports."""

    async def configure(folder: Path, ports: list[int]) -> Path:
        texts = {**files, "mosquitto.conf": conf_for(folder, *ports)}
        for name, text in texts.items():
            (folder / name).write_text(text)
            (folder / name).chmod(0o644)  # mosquitto drops to its own user
        return folder / "mosquitto.conf"

    async with running_mosquitto(2, configure) as (first, second):
        yield first, second


@contextlib.asynccontextmanager
async def external_stack(
    tmp: Path, postgresql_url: str, machines: Iterable[tuple[str, int]]
) -> AsyncIterator[ExternalStack]:
    """The whole server on a migrated PostgreSQL database and a generated Mosquitto."""
    await migrate_async(postgresql_url)
    async with (
        mosquitto_from_config(tmp, postgresql_url, machines) as (port, keys),
        running_stack(
            tmp, mqtt=True, database_url=postgresql_url, mqtt_url=f"mqtt://127.0.0.1:{port}"
        ) as stack,
    ):
        yield ExternalStack(stack, port, keys)

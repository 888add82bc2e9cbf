"""The whole server for the fleet and vend benchmarks, in its two shapes.

* ``embedded``: SQLite and the embedded broker inside the server process (the default
  deployment);
* ``postgres``: a private PostgreSQL and an external Mosquitto whose files are
  generated from the database by ``api.mqtt.mosquitto.write_mosquitto_config``.

Machines are provisioned (``api.services.provision``) before the server starts and their keys
written to a credentials file for the fleet worker.
"""

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from api.mqtt.accounts import SERVER_USERNAME, server_password
from api.mqtt.bridge import Bridge
from api.mqtt.mosquitto import write_mosquitto_config
from api.server.runtime import open_runtime
from api.services.container import Services
from api.services.provision import provision
from tests.benchmarks.measure import say
from tests.benchmarks.procs import MosquittoRun, config_dir
from tests.support.databases import migrate_async, postgres_server, sqlite_url
from tests.support.ports import free_port
from tests.support.stack import Stack, running_stack, test_settings

PREFIX = "vm"
LABELS = {
    "embedded": "SQLite + embedded broker",
    "postgres": "PostgreSQL + Mosquitto",
}


@dataclass
class BenchStack:
    kind: str
    stack: Stack
    mqtt_host: str
    mqtt_port: int
    credentials: Path
    machines: int

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    @property
    def services(self) -> Services:
        return self.stack.services

    @property
    def bridge(self) -> Bridge:
        found: Bridge = self.stack.runtime.mqtt.bridge
        return found

    def machine_ids(self) -> list[str]:
        return [f"{PREFIX}-{n}" for n in range(1, self.machines + 1)]


async def _provision(tmp: Path, url: str, machines: int, **overrides: object) -> Path:
    await migrate_async(url)
    settings = test_settings(tmp, database_url=url, **overrides)
    say(f"provisioning {machines} machines")
    return await provision(settings, machines, PREFIX, tmp / "machines.json")


async def _wait_bridge(stack: Stack) -> None:
    bridge: Bridge = stack.runtime.mqtt.bridge
    async with asyncio.timeout(60):
        await bridge.connected.wait()


@contextlib.asynccontextmanager
async def embedded_stack(tmp: Path, machines: int) -> AsyncIterator[BenchStack]:
    url = sqlite_url(tmp)
    credentials = await _provision(tmp, url, machines)
    async with running_stack(tmp, database_url=url) as stack:
        await _wait_bridge(stack)
        host = "127.0.0.1"
        yield BenchStack("embedded", stack, host, stack.settings.mqtt_port, credentials, machines)


@contextlib.asynccontextmanager
async def postgres_stack(tmp: Path, machines: int) -> AsyncIterator[BenchStack]:
    say("starting a private PostgreSQL")
    with postgres_server() as pg:
        name = await asyncio.to_thread(pg.create_database)
        url = pg.url(name)
        port = free_port()
        mqtt_url = f"mqtt://127.0.0.1:{port}"
        credentials = await _provision(tmp, url, machines, mqtt_url=mqtt_url)
        settings = test_settings(tmp, database_url=url, mqtt_url=mqtt_url).with_dev_secret()
        conf_dir = config_dir("smartvend-bench-mosquitto-")
        try:
            async with open_runtime(settings) as rt:
                paths = await write_mosquitto_config(
                    rt.services.ctx.db,
                    conf_dir,
                    port=port,
                    host="127.0.0.1",
                    server_username=SERVER_USERNAME,
                    server_password=server_password(settings),
                )
            mosquitto = MosquittoRun(paths[2], "127.0.0.1", port, conf_dir / "mosquitto.log")
            await mosquitto.start()
            try:
                async with running_stack(tmp, database_url=url, mqtt_url=mqtt_url) as stack:
                    await _wait_bridge(stack)
                    yield BenchStack("postgres", stack, "127.0.0.1", port, credentials, machines)
            finally:
                await mosquitto.stop()
        finally:
            shutil.rmtree(conf_dir, ignore_errors=True)


STACKS = {"embedded": embedded_stack, "postgres": postgres_stack}

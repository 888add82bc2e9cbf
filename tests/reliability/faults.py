"""Faults for reliability tests: Mosquitto that can be restarted on its ports, the
workers' settings, and the fleet's presence as the server and the devices see it."""

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from api.mqtt.accounts import server_credentials
from api.mqtt.mosquitto import CONF_FILE, write_mosquitto_config
from api.services.container import Services
from device.simulator import Fleet
from schema.models import Machine
from tests.e2e.external import readable_dir, start
from tests.support import stack
from tests.support.ports import free_port

RESTART_ATTEMPTS = 20


class Mosquitto:
    """Mosquitto with the machines' listener and the workers' own, restartable in place."""

    def __init__(self, folder: Path, conf: Path, ports: tuple[int, int]) -> None:
        self.folder = folder
        self.conf = conf
        self.device_port, self.server_port = ports
        self.log = folder / "mosquitto.log"
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    async def start(self) -> bool:
        self.process = await start(self.conf, self.log, self.server_port)
        return self.process is not None

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self.process = None

    async def restart(self, down_s: float = 0.5) -> None:
        """Stop, stay down ``down_s``, start again on the same ports (retained state lost:
        the test broker keeps no persistence, as after a crash)."""
        await self.stop()
        await asyncio.sleep(down_s)
        for _ in range(RESTART_ATTEMPTS):  # a port in TIME_WAIT may need a moment
            if await self.start():
                self.restarts += 1
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"mosquitto did not start again:\n{self.log.read_text()[-2000:]}")


@contextlib.asynccontextmanager
async def mosquitto_for(services: Services, settings: Any) -> AsyncIterator[Mosquitto]:
    """Mosquitto as ``mosquitto-config --server-port`` writes it, for the registered fleet."""
    creds = server_credentials(settings)
    folder = readable_dir()
    broker: Mosquitto | None = None
    try:
        for _attempt in range(3):
            ports = (free_port(), free_port())
            await write_mosquitto_config(
                services.ctx.db,
                folder,
                port=ports[0],
                host="127.0.0.1",
                server_username=creds.username,
                server_password=creds.password,
                server_port=ports[1],
            )
            broker = Mosquitto(folder, folder / CONF_FILE, ports)
            if await broker.start():
                break
            broker = None
        if broker is None:
            raise RuntimeError(
                f"mosquitto did not start:\n{(folder / 'mosquitto.log').read_text()}"
            )
        yield broker
    finally:
        if broker is not None:
            await broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def worker_settings(
    tmp: Path, database_url: str, broker: Mosquitto, **extra: str
) -> dict[str, str]:
    mqtt_url = f"mqtt://127.0.0.1:{broker.server_port}"
    return stack.server_environ(
        database_url, tmp / "var", mqtt_url, **{"alert_interval_s": "0", **extra}
    )


async def shown_offline(services: Services, fleet: Fleet) -> list[str]:
    """Machines whose device is connected but the server shows offline."""
    async with services.ctx.db() as s:
        online = dict((await s.execute(select(Machine.id, Machine.online))).all())
    return sorted(
        mid for mid, vm in fleet.machines.items() if vm.is_online() and not online.get(mid)
    )


async def presence_converges(services: Services, fleet: Fleet, within: float) -> float:
    """Seconds until every machine is connected and shown online; fails after ``within``."""
    started = time.monotonic()
    while True:
        connected = all(vm.is_online() for vm in fleet.machines.values())
        wrong = await shown_offline(services, fleet)
        if connected and not wrong:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            down = sorted(mid for mid, vm in fleet.machines.items() if not vm.is_online())
            raise AssertionError(
                f"after {within:.0f} s: shown offline while connected {wrong}; "
                f"devices not connected {down}"
            )
        await asyncio.sleep(0.1)

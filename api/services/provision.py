"""Machines for the simulator and the demo: registered (or re-keyed) with fresh keys.

Keys are written to a credentials file under var/ (mode 0600), the format the
simulator reads: ``{"machines": [{"machine_id": ..., "api_key": ...}]}``.
"""

import json
import os
from pathlib import Path

from api.errors import MachineTaken
from api.server.runtime import open_runtime
from api.services.machines import NewMachine
from api.settings import Settings

DEMO_NAMES = ("Lobby", "Cafeteria", "Gym", "Library", "Parking", "Station")


async def provision(settings: Settings, count: int, prefix: str, path: Path) -> Path:
    """Ensure ``prefix-1`` .. ``prefix-N`` exist with known keys; write them to ``path``."""
    entries = []
    async with open_runtime(settings) as rt:
        machines = rt.services.machines
        for i in range(1, count + 1):
            mid = f"{prefix}-{i}"
            name = f"{DEMO_NAMES[(i - 1) % len(DEMO_NAMES)]} {i}"
            try:
                _, key = await machines.register(
                    NewMachine(
                        machine_id=mid,
                        name=name,
                        price_amount=2000 + 500 * (i % 3),
                        capacity=20,
                        stock=15,
                        location="Demo floor",
                        simulated=True,
                    )
                )
            except MachineTaken:
                # A real machine of that id is never taken over by the simulator.
                if not await machines.is_simulated(mid):
                    raise MachineTaken(
                        f"{mid} is a real machine: the simulator will not take it over "
                        "(choose another prefix)"
                    ) from None
                key = await machines.rotate_key(mid)
            entries.append({"machine_id": mid, "api_key": key})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"machines": entries}, out, indent=2)
    return path


def mqtt_url_for_devices(settings: Settings) -> str:
    """Where devices connect: the external broker, or the embedded one."""
    if settings.mqtt_url:
        from urllib.parse import urlsplit

        parts = urlsplit(settings.mqtt_url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 1883}"
    host = "127.0.0.1" if settings.mqtt_host in ("0.0.0.0", "") else settings.mqtt_host  # noqa: S104
    return f"mqtt://{host}:{settings.mqtt_port}"

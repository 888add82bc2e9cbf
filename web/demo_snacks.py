"""``make run``'s 6-slot snack machine: products with pictures drawn here (no downloads),
a planogram, and a key the simulator uses, beside the one-slot demo machines."""

import asyncio
import json
import struct
import zlib
from pathlib import Path

from api.errors import MachineTaken
from api.server.runtime import open_runtime
from api.services.catalogue import ProductFields
from api.services.machines import NewMachine
from api.services.slots import SlotPlan
from api.settings import Settings

MACHINE_ID = "snacks-1"
SIZE = 96
# (slot, name, price in paise, background, foreground, shape)
PRODUCTS = (
    ("A1", "Cola 330 ml", 4000, (200, 30, 40), (250, 250, 250), "can"),
    ("A2", "Lemon soda", 3500, (240, 200, 40), (60, 120, 40), "can"),
    ("A3", "Water 500 ml", 2000, (60, 140, 220), (230, 245, 255), "bottle"),
    ("B1", "Masala chips", 2000, (240, 140, 30), (120, 40, 20), "bag"),
    ("B2", "Chocolate bar", 5000, (110, 60, 30), (240, 220, 190), "bar"),
    ("B3", "Peanut candy", 1000, (230, 210, 160), (150, 90, 40), "round"),
)


def _inside(shape: str, x: int, y: int) -> bool:
    cx, cy = x - SIZE // 2, y - SIZE // 2
    if shape == "can":
        return abs(cx) <= 18 and abs(cy) <= 32
    if shape == "bottle":
        return (abs(cx) <= 14 and -18 <= cy <= 34) or (abs(cx) <= 6 and -36 <= cy < -18)
    if shape == "bag":
        return abs(cx) <= 26 - abs(cy) // 6 and abs(cy) <= 34
    if shape == "bar":
        return abs(cx) <= 34 and abs(cy) <= 14
    return cx * cx + cy * cy <= 30 * 30


def picture(background: tuple[int, int, int], ink: tuple[int, int, int], shape: str) -> bytes:
    """A SIZE x SIZE RGB PNG: the product's shape in ``ink`` on ``background``."""
    rows = bytearray()
    for y in range(SIZE):
        rows.append(0)  # no filter
        for x in range(SIZE):
            rows.extend(ink if _inside(shape, x, y) else background)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


async def provision_snacks(settings: Settings, credentials: Path) -> None:
    """Register (or re-key) the snack machine and add it to the simulator's credentials."""
    async with open_runtime(settings) as rt:
        services = rt.services
        try:
            _, key = await services.machines.register(
                NewMachine(
                    machine_id=MACHINE_ID,
                    name="Snack corner",
                    price_amount=1000,
                    capacity=8,
                    stock=0,
                    location="Demo floor",
                    simulated=True,
                )
            )
            fresh = True
        except MachineTaken:
            if not await services.machines.is_simulated(MACHINE_ID):
                return  # a real machine of that id is never taken over
            key = await services.machines.rotate_key(MACHINE_ID)
            fresh = False
        if fresh:
            plans = []
            for motor, (slot, name, amount, background, ink, shape) in enumerate(PRODUCTS):
                made = await services.catalogue.create(
                    ProductFields(name=name, price_amount=amount)
                )
                await services.catalogue.set_image(made["id"], picture(background, ink, shape))
                plans.append(SlotPlan(slot, motor, made["id"], capacity=8, par=6, stock=6))
            version = (await services.slots.get(MACHINE_ID))["version"]
            await services.slots.put(MACHINE_ID, version, plans)
    await asyncio.to_thread(add_credentials, credentials, key)


def add_credentials(credentials: Path, key: str) -> None:
    """The snack machine's key beside the one-slot machines' (the simulator's file)."""
    found = json.loads(credentials.read_text()) if credentials.exists() else {"machines": []}
    found["machines"] = [m for m in found["machines"] if m["machine_id"] != MACHINE_ID]
    found["machines"].append({"machine_id": MACHINE_ID, "api_key": key})
    credentials.write_text(json.dumps(found, indent=2))
    credentials.chmod(0o600)

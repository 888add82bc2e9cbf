"""make run's snack machine: six products with pictures drawn locally, a planogram, a key."""

import json
import struct
import zlib
from pathlib import Path

import anyio

from api.server.runtime import open_runtime
from api.services.provision import provision
from broker.passwords import verify_secret
from schema.models import Machine
from tests.support import stack
from web.demo_snacks import MACHINE_ID, PRODUCTS, SIZE, provision_snacks


def pixels(png: bytes) -> bytes:
    """The raw rows of one of our PNGs (one IDAT chunk)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (SIZE, SIZE)
    length = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    return zlib.decompress(png[41 : 41 + length])


async def test_the_snack_machine_is_provisioned_once_and_rekeyed_after(tmp_path: Path) -> None:
    settings = stack.test_settings(tmp_path)
    await stack.create_schema(settings)
    credentials = tmp_path / "demo.json"
    await provision(settings, 2, "demo", credentials)
    await provision_snacks(settings, credentials)
    await provision_snacks(settings, credentials)  # a second start: same products, new key
    found = json.loads(await anyio.Path(credentials).read_text())
    ids = [m["machine_id"] for m in found["machines"]]
    assert ids == ["demo-1", "demo-2", MACHINE_ID]
    async with open_runtime(settings) as rt:
        services = rt.services
        plan = await services.slots.get(MACHINE_ID)
        assert [(s["id"], s["motor"], s["product"]["name"], s["stock"]) for s in plan["slots"]] == [
            (slot, motor, name, 6) for motor, (slot, name, *_rest) in enumerate(PRODUCTS)
        ]
        # Each machine registered the v1 way brings a product of its name; then the six.
        assert len(await services.catalogue.list()) == 3 + 6
        for slot in plan["slots"]:
            kind, data = await services.catalogue.image(slot["product"]["id"])
            rows = pixels(data)
            assert kind == "image/png" and len(rows) == SIZE * (1 + 3 * SIZE)
            assert len({rows[i : i + 3] for i in range(1, len(rows), 3)}) >= 2  # a shape is drawn
        async with services.ctx.db() as s:
            machine = await s.get(Machine, MACHINE_ID)
        assert machine is not None and machine.simulated
        assert verify_secret(found["machines"][2]["api_key"], machine.api_key_hash)

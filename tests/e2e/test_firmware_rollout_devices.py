"""A signed release rolled out by the real server to simulated machines that update
themselves for real (device/simulator.py with ``fw_dir``: the board's own updater
and boot.py on a real file system), on SQLite and the embedded broker.

The machines download the manifest and the files from the server's HTTP API with
their key and their id (``X-Machine-Id``), resolve the command's ``manifest_url``
path against their ``http_url``, check the Ed25519 signature, stage, switch at a
simulated reboot and confirm the trial. One machine's download comes down
corrupt: it reports ``failed`` ``hash_mismatch`` and keeps its version.
"""

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from device.simfirmware import FirmwareFaults
from device.simulator import Fleet
from schema.models import Machine as MachineRow
from tests.e2e import flow
from tests.firmware import support
from tests.support.stack import Stack, running_stack

GOOD = ("fwd-1", "fwd-2")
CORRUPT = "fwd-3"
OLD, NEW = "1.0.0", "1.1.0"
FILES = {"main.py": 2500, "lib/vend.mpy": 9000}


async def _fw_by_machine(stack: Stack) -> dict[str, str | None]:
    async with stack.services.ctx.db() as s:
        rows = await s.execute(select(MachineRow.id, MachineRow.fw))
        return {mid: fw for mid, fw in rows.all()}


async def _settled(http: httpx.AsyncClient, auth: dict[str, str], rollout: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        view: dict[str, Any] = (await http.get(f"/api/rollouts/{rollout}", headers=auth)).json()
        return view if view["status"] != "running" else None

    found: dict[str, Any] = await flow.until(done, f"rollout {rollout} to stop", within=90)
    return found


async def test_a_signed_release_reaches_simulated_machines(tmp_path: Path) -> None:
    signer = support.signer(tmp_path)
    release = support.release_dir(tmp_path, NEW, FILES, signer)
    async with running_stack(tmp_path, firmware_public_keys=signer.public_key) as stack:
        await flow.bridge_up(stack)
        mids = (*GOOD, CORRUPT)
        keys = {mid: await flow.register(stack.services, mid) for mid in mids}
        fleet = Fleet(
            [(mid, keys[mid]) for mid in mids],
            "127.0.0.1",
            stack.settings.mqtt_port,
            seed=7,
            telemetry_s=0,
            fw_dir=str(tmp_path / "fw"),
            http_url=stack.url,
            firmware_keys=[signer.public_key],
            fw_version=OLD,
        )
        firmware = fleet.machine(CORRUPT).firmware
        assert firmware is not None
        firmware.faults = FirmwareFaults(hash_mismatch_rate=1.0)
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
            auth = await support.admin_token(http)
            stored = await support.upload(http, auth, release)
            assert stored.status_code == 201, stored.text
            # A machine's download needs its id as well as its key.
            bare = await http.get(
                f"/api/firmware/{NEW}/manifest",
                headers={"Authorization": f"Bearer {keys[GOOD[0]]}"},
            )
            assert bare.status_code == 401
            async with fleet:
                await fleet.wait_online()

                async def online() -> bool:
                    views = [await stack.services.views.public_status(m, "") for m in mids]
                    return all(v["online"] for v in views)

                await flow.until(online, "every machine online on the server")
                started = await http.post(
                    "/api/rollouts",
                    headers=auth,
                    json={"version": NEW, "target": "all", "waves": [100], "max_failure_pct": 50},
                )
                assert started.status_code == 201, started.text
                view = await _settled(http, auth, started.json()["rollout_id"])
                by_id = {m["machine_id"]: m for m in view["machines"]}
                assert view["status"] == "finished", view
                assert {mid: by_id[mid]["status"] for mid in mids} == {
                    GOOD[0]: "succeeded",
                    GOOD[1]: "succeeded",
                    CORRUPT: "failed",
                }
                assert by_id[CORRUPT]["error"] == "hash_mismatch"

                # The good machines run the new version and say so in their status.
                async def reported() -> bool:
                    fw = await _fw_by_machine(stack)
                    return all(fw.get(mid) == NEW for mid in GOOD)

                await flow.until(reported, "the new fw in the good machines' status")
                assert (await _fw_by_machine(stack))[CORRUPT] == OLD
                for mid in GOOD:
                    assert fleet.machine(mid).controller.config["fw"] == NEW
                    staged = tmp_path / "fw" / mid / "current"
                    for rel in FILES:
                        assert (staged / rel).read_bytes() == (release / rel).read_bytes()
                assert fleet.machine(CORRUPT).controller.config["fw"] == OLD

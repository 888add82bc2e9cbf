"""A fleet rollout end to end on both stacks: real server, broker, database and HTTP.

Sixty machines run the update protocol over MQTT and download over HTTP. A
release that 2 % of them fail (one machine in the second wave, one later) is
rolled out with a 1 % threshold: the rollout pauses after the wave that holds
the first failure and leaves the later waves queued. After an abort, a release
nobody fails is rolled out to all and finishes, every machine reconnecting with
the new ``fw``.
"""

from pathlib import Path
from typing import Any

import httpx
import pytest

from api.services.container import Services
from tests.e2e import flow
from tests.e2e.external import mosquitto_for_database
from tests.firmware import support
from tests.firmware.fleet import Machine, UpdateFleet
from tests.support.databases import migrate_async
from tests.support.stack import Stack, running_stack

pytest_plugins = ["tests.support.db_fixtures"]

COUNT = 60
FAILING = {5, 40}  # positions (machine ids sort in this order): 2 of 60 machines
WAVES = [1, 10, 50, 100]  # of 60: 1, 6, 30, 60 machines
FILES = {"boot.py": 300, "main.py": 2500, "lib/vend.mpy": 70_000}


def ids() -> list[str]:
    return [f"fw-{i:03d}" for i in range(COUNT)]


async def register_all(services: Services, mids: list[str]) -> dict[str, str]:
    return {mid: await flow.register(services, mid) for mid in mids}


async def run_rollouts(tmp: Path, stack: Stack, port: int, keys: dict[str, str], key: str) -> None:
    s = support.Signer(tmp / "release.key", key)
    bad = support.release_dir(tmp, "1.1.0", FILES, s)
    good = support.release_dir(tmp, "1.2.0", FILES, s)
    machines = [
        Machine(mid, keys[mid], fail_versions={"1.1.0"} if i in FAILING else set())
        for i, mid in enumerate(ids())
    ]
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=stack.url, timeout=30, limits=limits) as http:
        auth = await support.admin_token(http)
        for folder in (bad, good):
            stored = await support.upload(http, auth, folder)
            assert stored.status_code == 201, stored.text
        fleet = UpdateFleet(machines, port, http, key)
        async with fleet.running():
            await fleet.wait_online()
            await flow.until(lambda: _all_online(stack), "every machine online in the database")

            started = await http.post(
                "/api/rollouts",
                headers=auth,
                json={"version": "1.1.0", "target": "all", "waves": WAVES, "max_failure_pct": 1},
            )
            assert started.status_code == 201, started.text
            first = started.json()["rollout_id"]
            view = await _settles(http, auth, first)
            assert view["status"] == "paused" and view["wave"] == 2, view
            by_id = {m["machine_id"]: m for m in view["machines"]}
            failed = [mid for mid, m in by_id.items() if m["status"] == "failed"]
            assert failed == [ids()[5]] and by_id[ids()[5]]["error"] == "hash_mismatch"
            opened = ids()[:6]
            assert all(by_id[mid]["status"] == "succeeded" for mid in opened if mid != ids()[5])
            assert all(m["status"] == "queued" for mid, m in by_id.items() if mid not in opened)
            assert all(fleet.machines[mid].fw == "1.1.0" for mid in opened if mid != ids()[5])
            assert all(not fleet.machines[mid].updates_seen for mid in ids()[6:])

            aborted = await http.post(f"/api/rollouts/{first}/abort", headers=auth)
            assert aborted.json()["status"] == "aborted"
            assert {m["status"] for m in aborted.json()["machines"][6:]} == {"canceled"}

            started = await http.post(
                "/api/rollouts",
                headers=auth,
                json={"version": "1.2.0", "target": "all", "waves": WAVES, "max_failure_pct": 1},
            )
            second = started.json()["rollout_id"]
            view = await _settles(http, auth, second)
            assert view["status"] == "finished" and view["wave"] == 4, view
            assert {m["status"] for m in view["machines"]} == {"succeeded"}
            assert {m.fw for m in fleet.machines.values()} == {"1.2.0"}
            assert all(m.boot >= 2 for m in fleet.machines.values())
            assert await _fw_in_database(stack) == {"1.2.0"}
            assert not fleet.errors, fleet.errors
            assert {code for m in fleet.machines.values() for code in m.ranges} == {206}
            metrics = await http.get("/metrics")
            assert 'smartvend_rollouts{status="finished"} 1.0' in metrics.text


async def _settles(
    http: httpx.AsyncClient, auth: dict[str, str], rollout_id: str
) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        view = (await http.get(f"/api/rollouts/{rollout_id}", headers=auth)).json()
        return view if view["status"] != "running" else None

    found: dict[str, Any] = await flow.until(done, f"rollout {rollout_id} to stop", within=60)
    return found


async def _all_online(stack: Stack) -> bool:
    stats = [await stack.services.views.public_status(mid, "") for mid in ids()]
    return all(s["online"] for s in stats)


async def _fw_in_database(stack: Stack) -> set[str | None]:
    from sqlalchemy import select

    from schema.models import Machine as MachineRow

    async with stack.services.ctx.db() as s:
        return set(await s.scalars(select(MachineRow.fw)))


async def test_rollout_on_sqlite_and_embedded_broker(tmp_path: Path) -> None:
    signer = support.signer(tmp_path)
    async with running_stack(tmp_path, firmware_public_keys=signer.public_key) as stack:
        await flow.bridge_up(stack)
        keys = await register_all(stack.services, ids())
        await run_rollouts(tmp_path, stack, stack.settings.mqtt_port, keys, signer.public_key)


def mosquitto_for(tmp: Path, url: str) -> Any:
    return mosquitto_for_database(tmp, url, lambda services: register_all(services, ids()))


@pytest.mark.postgres
@pytest.mark.mosquitto
async def test_rollout_on_postgres_and_mosquitto(tmp_path: Path, postgresql_url: str) -> None:
    signer = support.signer(tmp_path)
    await migrate_async(postgresql_url)
    async with (
        mosquitto_for(tmp_path, postgresql_url) as (port, keys),
        running_stack(
            tmp_path,
            database_url=postgresql_url,
            mqtt_url=f"mqtt://127.0.0.1:{port}",
            firmware_public_keys=signer.public_key,
        ) as stack,
    ):
        await flow.bridge_up(stack)
        await run_rollouts(tmp_path, stack, port, keys, signer.public_key)

"""The rollout's rules through the services on a real database, with a fake clock.

The one that matters most: no update command is ever written for a machine
while it is locked or between a dispense's ``accepted`` and its final result.
"""

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from api.clock import FakeClock
from api.errors import InvalidRequest, MachineNotFound
from api.firmware import cli as fw_cli
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from api.services.firmware import Upload
from api.services.machines import NewMachine
from schema import topics
from schema.models import Machine, OutboxMessage
from tests.firmware import support

CLIENT = "client-0001"


async def add_release(services: Services, tmp: Path, version: str = "1.1.0") -> None:
    signer = support.signer(tmp, f"{version}.key")
    folder = support.release_dir(tmp, version, {"main.py": 500}, signer)
    data, signature, files = fw_cli.read_release(folder)
    blobs = {rel: path.read_bytes() for rel, path in files}

    def reader(rel: str) -> Upload:
        left = [blobs[rel]]

        async def read(n: int) -> bytes:
            out, left[0] = left[0][:n], left[0][n:]
            return out

        return Upload(rel, read)

    await services.firmware.add(data, signature, [reader(r) for r in blobs], (signer.public_key,))


async def machine(services: Services, mid: str, *, online: bool = True) -> None:
    await services.machines.register(
        NewMachine(machine_id=mid, name=mid, price_amount=2500, capacity=10, stock=5)
    )
    if online:
        await services.machines.apply_status(
            mid, {"state": "online", "boot": 1, "fw": "1.0.0", "ts": 0}
        )


def cmd_like(mid: str) -> str:
    """A LIKE pattern for the machine's command topics."""
    return topics.machine_filter("cmd", mid).removesuffix("+") + "%"


async def updates_for(services: Services, mid: str) -> list[dict[str, object]]:
    """Update commands written to the outbox for ``mid`` (cleared topics left out)."""
    async with services.ctx.db() as s:
        rows = await s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.topic.like(cmd_like(mid)))
            .order_by(OutboxMessage.id)
        )
        found = [json.loads(r.payload) for r in rows if r.payload]
    return [c for c in found if c.get("action") == "update"]


async def status_of(services: Services, rollout_id: str, mid: str) -> tuple[str, str | None]:
    view = await services.rollouts.view(rollout_id)
    row = next(m for m in view["machines"] if m["machine_id"] == mid)
    return row["status"], row["error"]


async def test_no_update_command_during_a_vend(
    services: Services, gateway: TestGateway, tmp_path: Path
) -> None:
    await add_release(services, tmp_path)
    await machine(services, "m1")
    async with services.ctx.db() as s:
        row = await s.get(Machine, "m1")
        assert row is not None and row.display_code is not None
        code = row.display_code
    lock = await services.locks.lock_by_code(code, CLIENT)
    rid = await services.rollouts.start("1.1.0", {"machines": ["m1"]}, [100], 0, 3600)

    await services.rollouts.tick()  # locked: nothing sent
    assert await updates_for(services, "m1") == []
    created = await services.orders.create(lock.session_id, CLIENT, 2)
    proof = gateway.complete_payment(created.gateway_order_id)
    await services.orders.verify(
        proof["razorpay_order_id"], proof["razorpay_payment_id"], proof["razorpay_signature"]
    )
    await services.rollouts.tick()  # the dispense command is out
    assert await updates_for(services, "m1") == []
    async with services.ctx.db() as s:
        cmd_topics = [
            t
            for t in await s.scalars(select(OutboxMessage.topic))
            if t.startswith(cmd_like("m1")[:-1])
        ]
    cmd_id = cmd_topics[0].rsplit("/", 1)[1]
    assert await services.dispense.apply_result("m1", cmd_id, "accepted", 0)
    await services.rollouts.tick()
    assert await services.dispense.apply_result("m1", cmd_id, "running", 1)
    await services.rollouts.tick()
    assert await updates_for(services, "m1") == []
    assert await status_of(services, rid, "m1") == ("queued", None)

    assert await services.dispense.apply_result("m1", cmd_id, "succeeded", 2)  # vend over
    assert await services.rollouts.tick() == 1
    sent = await updates_for(services, "m1")
    assert len(sent) == 1
    assert sent[0]["firmware"] == {
        "version": "1.1.0",
        "manifest_url": "/api/firmware/1.1.0/manifest",
        "signature": (tmp_path / "out-1.1.0" / "manifest.sig").read_text().strip(),
    }


async def test_machine_reporting_a_vend_or_an_update_in_flight_gets_none(
    services: Services, tmp_path: Path
) -> None:
    await add_release(services, tmp_path)
    await machine(services, "m1")
    await services.machines.apply_reported(
        "m1", {"desired_version": 0, "mode": "dispensing", "stock": 5, "ts": 0}
    )
    await services.rollouts.start("1.1.0", "all", [100], 0, 3600)
    await services.rollouts.start("1.1.0", "all", [100], 0, 3600)  # a second, same machine
    assert await services.rollouts.tick() == 0
    await services.machines.apply_reported(
        "m1", {"desired_version": 0, "mode": "idle", "stock": 5, "ts": 0}
    )
    assert await services.rollouts.tick() == 1  # one command, not one per rollout
    assert await services.rollouts.tick() == 0


async def test_busy_rejection_requeues_and_results_move_the_machine(
    services: Services, tmp_path: Path
) -> None:
    await add_release(services, tmp_path)
    await machine(services, "m1")
    rid = await services.rollouts.start("1.1.0", "all", [100], 0, 3600)
    await services.rollouts.tick()
    first = (await updates_for(services, "m1"))[0]["cmd_id"]
    busy = {"cmd_id": first, "status": "rejected", "error": "busy", "ts": 1}
    assert await services.rollouts.apply_result("m1", first, json.dumps(busy).encode())
    assert await status_of(services, rid, "m1") == ("queued", "busy")
    await services.rollouts.tick()
    second = (await updates_for(services, "m1"))[-1]["cmd_id"]
    assert second != first
    # a late report on the old command changes nothing
    assert not await services.rollouts.apply_result(
        "m1", first, json.dumps({"cmd_id": first, "status": "accepted"}).encode()
    )

    def report(status: str, **extra: object) -> bytes:
        return json.dumps({"cmd_id": second, "status": status, "ts": 2, **extra}).encode()

    assert not await services.rollouts.apply_result("other", second, report("accepted"))
    assert await services.rollouts.apply_result("m1", second, report("accepted"))
    assert await status_of(services, rid, "m1") == ("downloading", None)
    progress = {"stage": "install", "bytes": 5, "total": 9, "future_field": [1]}
    assert await services.rollouts.apply_result("m1", second, report("running", progress=progress))
    view = await services.rollouts.view(rid)
    assert view["machines"][0]["status"] == "installing"
    assert view["machines"][0]["progress"] == {"bytes": 5, "total": 9}
    back = {"stage": "download", "bytes": 1, "total": 9}
    assert not await services.rollouts.apply_result("m1", second, report("running", progress=back))
    failed = report("failed", error="rolled_back")
    assert await services.rollouts.apply_result("m1", second, failed)
    assert await status_of(services, rid, "m1") == ("failed", "rolled_back")
    assert not await services.rollouts.apply_result("m1", second, report("succeeded"))
    await services.rollouts.tick()
    assert (await services.rollouts.view(rid))["status"] == "paused"  # 100 % failed > 0 %
    resumed = await services.rollouts.resume(rid)
    assert resumed["status"] == "finished"  # that was the last wave


async def test_offline_machine_waits_then_times_out(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    await add_release(services, tmp_path)
    await machine(services, "away", online=False)
    await machine(services, "back", online=False)
    rid = await services.rollouts.start("1.1.0", "all", [100], 50, 600)
    assert await services.rollouts.tick() == 0
    clock.advance(300)
    await services.machines.apply_status(
        "back", {"state": "online", "boot": 2, "fw": "1.0.0", "ts": 0}
    )
    assert await services.rollouts.tick() == 1
    assert await status_of(services, rid, "back") == ("sent", None)
    # the new version comes online: success even without its result message
    await services.machines.apply_status(
        "back", {"state": "online", "boot": 3, "fw": "1.1.0", "ts": 0}
    )
    clock.advance(301)
    await services.rollouts.tick()
    assert await status_of(services, rid, "back") == ("succeeded", None)
    assert await status_of(services, rid, "away") == ("timed_out", "deadline")
    view = await services.rollouts.view(rid)
    assert view["status"] == "finished"  # 50 % failed is within 50 %


async def test_waves_tags_resume_and_abort(services: Services, tmp_path: Path) -> None:
    await add_release(services, tmp_path)
    for i in range(10):
        await machine(services, f"t{i}")
    for i in range(8):
        await services.rollouts.set_tags(f"t{i}", ["north", "cafe"] if i < 4 else ["north"])
    assert await services.rollouts.tags("t0") == ["cafe", "north"]
    with pytest.raises(InvalidRequest):
        await services.rollouts.set_tags("t0", ["no spaces"])
    with pytest.raises(MachineNotFound):
        await services.rollouts.set_tags("ghost", [])
    with pytest.raises(InvalidRequest):
        await services.rollouts.start("1.1.0", "all", [50, 10], 0, 60)
    with pytest.raises(InvalidRequest):
        await services.rollouts.start("1.1.0", {"tag": "nobody"}, [100], 0, 60)
    with pytest.raises(MachineNotFound):
        await services.rollouts.start("1.1.0", {"machines": ["ghost"]}, [100], 0, 60)

    rid = await services.rollouts.start("1.1.0", {"tag": "north"}, [25, 50, 100], 0, 3600)
    view = await services.rollouts.view(rid)
    assert [m["machine_id"] for m in view["machines"]] == [f"t{i}" for i in range(8)]
    assert [m["wave"] for m in view["machines"]] == [1, 1, 2, 2, 3, 3, 3, 3]
    assert await services.rollouts.tick() == 2
    for mid in ("t0", "t1"):  # both come back with the new version
        await services.machines.apply_status(
            mid, {"state": "online", "boot": 2, "fw": "1.1.0", "ts": 0}
        )
    assert await services.rollouts.tick() == 2  # wave 1 done, wave 2 opened at once
    assert (await services.rollouts.view(rid))["wave"] == 2
    cmd = (await updates_for(services, "t2"))[0]["cmd_id"]
    bad = {"cmd_id": cmd, "status": "rejected", "error": "no_space", "ts": 1}
    await services.rollouts.apply_result("t2", cmd, json.dumps(bad).encode())
    await services.machines.apply_status(
        "t3", {"state": "online", "boot": 2, "fw": "1.1.0", "ts": 0}
    )
    await services.rollouts.tick()
    view = await services.rollouts.view(rid)
    assert view["status"] == "paused" and view["wave"] == 2
    assert await status_of(services, rid, "t2") == ("rejected", "no_space")
    resumed = await services.rollouts.resume(rid)
    assert resumed["status"] == "running" and resumed["wave"] == 3
    assert await services.rollouts.tick() == 4
    aborted = await services.rollouts.abort(rid)
    assert aborted["status"] == "aborted"
    assert {m["status"] for m in aborted["machines"][4:]} == {"canceled"}
    for mid in ("t4", "t5", "t6", "t7"):  # each sent command is cleared from the broker
        async with services.ctx.db() as s:
            payloads = list(
                await s.scalars(
                    select(OutboxMessage.payload).where(OutboxMessage.topic.like(cmd_like(mid)))
                )
            )
        assert payloads[-1] == b""
    with pytest.raises(InvalidRequest):
        await services.rollouts.resume(rid)
    listed = await services.rollouts.list()
    assert listed[0]["counts"] == {"succeeded": 3, "rejected": 1, "canceled": 4}


async def test_an_aborted_update_blocks_the_machine_only_until_its_deadline(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    await add_release(services, tmp_path, "1.1.0")
    await add_release(services, tmp_path, "1.2.0")
    await machine(services, "m1")
    first = await services.rollouts.start("1.1.0", "all", [100], 0, 600)
    await services.rollouts.tick()
    cmd = (await updates_for(services, "m1"))[0]["cmd_id"]
    accepted = json.dumps({"cmd_id": cmd, "status": "accepted", "ts": 1}).encode()
    assert await services.rollouts.apply_result("m1", cmd, accepted)
    aborted = await services.rollouts.abort(first)
    assert aborted["machines"][0]["status"] == "downloading"  # it carries on by itself
    await services.rollouts.start("1.2.0", "all", [100], 0, 3600)
    assert await services.rollouts.tick() == 0  # still busy with the first update
    clock.advance(601)  # the first update went silent past its deadline
    assert await services.rollouts.tick() == 1
    assert [c["firmware"]["version"] for c in await updates_for(services, "m1")] == [  # type: ignore[index]
        "1.1.0",
        "1.2.0",
    ]

"""The lock path: one short transaction, its desired/state coalesced per machine."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, select

from api.services.container import Services
from schema import messages, topics
from schema.models import Machine, OutboxMessage
from tests.api.test_vend_flow import online_machine

CLIENT = "shopper-0001"


async def outbox_rows(services: Services) -> list[OutboxMessage]:
    async with services.ctx.db() as s:
        return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def code_of(services: Services, mid: str) -> str:
    async with services.ctx.db() as s:
        code = await s.scalar(select(Machine.display_code).where(Machine.id == mid))
    assert code is not None
    return code


async def test_a_burst_of_locks_leaves_one_desired_and_one_state(services: Services) -> None:
    await online_machine(services, "m1")
    for _ in range(10):  # lock and let go, ten times, before anything is published
        lock = await services.locks.lock_by_code(await code_of(services, "m1"), CLIENT)
        await services.locks.unlock("m1", CLIENT, lock.session_id)
    retained = {topics.desired("m1"), topics.state("m1")}
    rows = [r for r in await outbox_rows(services) if r.topic in retained]
    assert sorted(r.topic for r in rows) == [topics.desired("m1"), topics.state("m1")]
    desired = next(r for r in rows if r.topic == topics.desired("m1"))
    latest = messages.decode("desired", bytes(desired.payload))
    async with services.ctx.db() as s:
        machine = await s.get(Machine, "m1")
    assert machine is not None
    assert latest["version"] == machine.desired_version  # the newest one survived
    assert latest["display"]["code"] == machine.display_code


@pytest.mark.parametrize("named", [True, False], ids=["machine named", "code only"])
async def test_locking_is_one_short_transaction(services: Services, named: bool) -> None:
    await online_machine(services, "m1")
    code = await code_of(services, "m1")
    engine = services.ctx.db.kw["bind"].sync_engine
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        lock = await services.locks.lock_by_code(code, CLIENT, "m1" if named else None)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert lock.machine_id == "m1"
    # A code-only guess first counts the live codes (what it costs its address:
    # docs/security.md). Then: find the machine with its lock (one statement), take the
    # code (bumping desired's version), add the lock, replace the machine's unpublished
    # desired/state, write them.
    assert statements.count("BEGIN") + statements.count("COMMIT") <= (2 if named else 4)
    work = [s for s in statements if s not in ("BEGIN", "COMMIT")]
    assert work.count("UPDATE") == 1
    costing = [] if named else ["SELECT"]
    assert work == [*costing, "SELECT", "UPDATE", "INSERT", "DELETE", "INSERT"], work
    desired = [r for r in await outbox_rows(services) if r.topic == topics.desired("m1")]
    assert len(desired) == 1
    assert messages.decode("desired", bytes(desired[0].payload))["lock"]["session"] == (
        lock.session_id
    )


async def test_a_crowd_of_right_code_only_guesses_is_never_refused(services: Services) -> None:
    """More shoppers at once than the fleet's code-only budget holds: each guess pays
    before its code is checked, the rest wait for those in flight, nobody is refused."""
    crowd = services.ctx.policy.fleet_code_only_limit + 10
    for n in range(crowd):
        await online_machine(services, f"m{n}")
    codes = [await code_of(services, f"m{n}") for n in range(crowd)]
    locks = await asyncio.gather(
        *(services.locks.lock_by_code(code, f"shopper-{n:04d}") for n, code in enumerate(codes))
    )
    assert sorted(lock.machine_id for lock in locks) == sorted(f"m{n}" for n in range(crowd))
    assert services.locks.guard._held == {}  # every guess settled

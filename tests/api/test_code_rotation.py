"""Codes that came due together are rotated a chunk of machines per transaction."""

import pytest
from sqlalchemy import event, select

from api.clock import FakeClock
from api.services import sweeper
from api.services.container import Services
from schema.models import Machine
from tests.api.test_vend_flow import online_machine

pytest_plugins = ["tests.support.services"]


async def test_a_fleet_whose_codes_came_due_together_is_rotated_in_chunks(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweeper, "ROTATE_CHUNK", 2)
    for n in range(5):
        await online_machine(services, f"m{n}")
    async with services.ctx.db() as s:
        before = dict((await s.execute(select(Machine.id, Machine.display_code))).all())
    clock.advance(services.ctx.policy.display_code_ttl_s + 1)
    engine = services.ctx.db.kw["bind"].sync_engine
    commits = 0

    def committed(_conn: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(engine, "commit", committed)
    try:
        rotated = await services.sweeper._rotate_codes(clock.now())
    finally:
        event.remove(engine, "commit", committed)
    assert rotated == 5
    async with services.ctx.db() as s:
        after = dict((await s.execute(select(Machine.id, Machine.display_code))).all())
        expiries = (await s.scalars(select(Machine.display_code_expires_at))).all()
    assert all(after[mid] not in (None, before[mid]) for mid in before)
    assert len(set(after.values())) == 5
    assert min(expiries) > clock.now()
    assert commits == 3  # 2 + 2 + 1 machines, each chunk its own transaction

"""Provisioning for make run / smartvend simulate flags its machines as simulated."""

from pathlib import Path

import pytest
from sqlalchemy import select

from api.errors import MachineTaken
from api.server.runtime import open_runtime
from api.services.machines import NewMachine
from api.services.provision import provision
from schema.models import Machine
from tests.support import stack


async def test_simulated_machines_are_flagged_and_real_ones_never_taken_over(
    tmp_path: Path,
) -> None:
    settings = stack.test_settings(tmp_path)
    await stack.create_schema(settings)
    async with open_runtime(settings) as rt:
        await rt.services.machines.register(
            NewMachine(machine_id="real-1", name="Real", price_amount=2500, capacity=5)
        )
    await provision(settings, 2, "sim", tmp_path / "sim.json")
    await provision(settings, 2, "sim", tmp_path / "sim.json")  # again: keys rotated
    with pytest.raises(MachineTaken, match="real machine"):
        await provision(settings, 1, "real", tmp_path / "real.json")
    async with open_runtime(settings) as rt, rt.services.ctx.db.begin() as s:
        flags = {m.id: m.simulated for m in (await s.scalars(select(Machine))).all()}
    assert flags == {"real-1": False, "sim-1": True, "sim-2": True}

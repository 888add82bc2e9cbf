"""Presence: boot counters decide; silence and live messages do not (CONTRACT 1)."""

from api.clock import FakeClock
from api.services.container import Services
from api.services.machines import NewMachine
from schema.models import Machine


async def online(services: Services, mid: str) -> bool:
    async with services.ctx.db.begin() as s:
        machine = await s.get(Machine, mid)
        assert machine is not None
        return machine.online


async def test_status_alone_decides_presence(services: Services, clock: FakeClock) -> None:
    await services.machines.register(
        NewMachine(machine_id="p1", name="P", price_amount=1000, capacity=5, stock=1)
    )
    assert await services.machines.apply_status("p1", {"state": "online", "boot": 3})
    assert not await services.machines.apply_status("p1", {"state": "lost", "boot": 2})
    assert await online(services, "p1")
    # A connected machine that says nothing for a day (keepalive pings only) stays online.
    for _ in range(24):
        clock.advance(3600)
        await services.sweeper.tick()
    assert await online(services, "p1")
    assert await services.machines.apply_status("p1", {"state": "lost", "boot": 3})
    assert not await online(services, "p1")
    # the retained "online" of the same boot, redelivered, proves nothing
    assert not await services.machines.apply_status("p1", {"state": "online", "boot": 3})
    assert not await online(services, "p1")
    # neither does a late message of the lost connection
    await services.machines.record_telemetry("p1", {"ts": clock.now(), "rssi": -60})
    assert not await online(services, "p1")
    assert await services.machines.apply_status("p1", {"state": "online", "boot": 4})
    assert await online(services, "p1")

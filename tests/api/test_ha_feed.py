"""The feed writes to the outbox only what changed: a sale, a firmware, a rename, midnight."""

import json

from sqlalchemy import select, update

from api.clock import FakeClock, LocalCalendar
from api.services import ha_discovery
from api.services.container import Services
from api.services.ha_feed import HomeAssistantFeed, machine_removed
from api.services.machines import NewMachine
from schema import messages, topics
from schema.models import Machine, MachineSlot, OutboxMessage

PREFIX = "homeassistant"
CONFIGS = 1 + 2 * 6  # the server's, and six per machine


async def outbox(services: Services) -> list[OutboxMessage]:
    async with services.ctx.db.begin() as s:
        rows = list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())
        for row in rows:
            await s.delete(row)
    return rows


async def setup(services: Services, clock: FakeClock, prefix: str | None) -> HomeAssistantFeed:
    for mid, name in (("vm-1", "Lobby"), ("vm-2", "Canteen")):
        await services.machines.register(
            NewMachine(machine_id=mid, name=name, price_amount=2500, capacity=10, stock=5)
        )
    await outbox(services)  # registration's own desired/state
    return HomeAssistantFeed(services.ctx.db, clock, prefix, LocalCalendar("Asia/Kolkata"), "9.9.9")


async def test_snapshot_then_only_changes(services: Services, clock: FakeClock) -> None:
    feed = await setup(services, clock, PREFIX)
    snapshot = dict(await feed.snapshot())
    assert len(snapshot) == CONFIGS + 2
    today = messages.decode("today", snapshot[topics.today("vm-1")])
    assert (today["vends"], today["amount"], today["currency"], today["fw"]) == (0, 0, "INR", None)

    clock.advance(30)  # time passes, nothing changes: nothing is written
    assert await feed.refresh() == 0
    assert await outbox(services) == []

    async with services.ctx.db.begin() as s:  # a firmware arrives and vm-2 is renamed
        await s.execute(update(Machine).where(Machine.id == "vm-1").values(fw="1.1.0"))
        await s.execute(update(Machine).where(Machine.id == "vm-2").values(name="Canteen 2"))
    assert await feed.refresh() == 1 + 6 + 6  # vm-1's today and configs, vm-2's configs
    rows = await outbox(services)
    assert all(row.retain and row.qos == 1 for row in rows)
    by_topic = {row.topic: bytes(row.payload) for row in rows}
    config = json.loads(
        by_topic[topics.discovery_config(PREFIX, "sensor", "smartvend_vm-1", "firmware")]
    )
    assert config["device"]["sw_version"] == "1.1.0"
    assert messages.decode("today", by_topic[topics.today("vm-1")])["fw"] == "1.1.0"
    assert topics.today("vm-2") not in by_topic


async def test_figures_reset_at_local_midnight(services: Services, clock: FakeClock) -> None:
    feed = await setup(services, clock, None)
    snapshot = dict(await feed.snapshot())
    assert len(snapshot) == 2  # no prefix: the daily figures only
    day = messages.decode("today", snapshot[topics.today("vm-1")])
    to_midnight = day["since"] + 86400 - clock.now()
    clock.advance(to_midnight - 1)
    assert await feed.refresh() == 0
    clock.advance(1)
    assert await feed.refresh() == 2
    rows = await outbox(services)
    fresh = messages.decode("today", bytes(rows[0].payload))
    assert fresh["since"] == day["since"] + 86400 and fresh["day"] != day["day"]


async def test_removed_machines_get_empty_configs(services: Services, clock: FakeClock) -> None:
    feed = await setup(services, clock, PREFIX)
    await feed.snapshot()
    async with services.ctx.db.begin() as s:
        await machine_removed(s, "vm-2", ["1"], clock.now(), prefix=PREFIX)
    rows = await outbox(services)
    expected = {topics.today("vm-2"), *ha_discovery.removal_topics(PREFIX, "vm-2", ["1"])}
    assert {row.topic for row in rows} == expected
    assert len(rows) == 1 + 6 and all(bytes(row.payload) == b"" and row.retain for row in rows)
    for row in rows:
        if row.topic != topics.today("vm-2"):
            assert topics.parse_discovery_config(row.topic)[2] == "smartvend_vm-2"

    # A machine gone from the database is cleared by the next refresh too.
    async with services.ctx.db.begin() as s:
        await s.execute(MachineSlot.__table__.delete().where(MachineSlot.machine_id == "vm-2"))
        await s.execute(Machine.__table__.delete().where(Machine.id == "vm-2"))
    assert await feed.refresh() == 1 + 6
    assert all(bytes(row.payload) == b"" for row in await outbox(services))


async def test_a_decommissioned_machine_leaves_home_assistant(
    services: Services, clock: FakeClock
) -> None:
    feed = await setup(services, clock, PREFIX)
    await feed.snapshot()
    await services.machines.remove("vm-2", by="admin")
    async with services.ctx.db.begin() as s:
        await s.execute(OutboxMessage.__table__.delete())
    assert await feed.refresh() == 1 + 6  # its today and its six configs, emptied
    rows = await outbox(services)
    assert {row.topic for row in rows} == {
        topics.today("vm-2"),
        *ha_discovery.removal_topics(PREFIX, "vm-2", ["1"]),
    }
    assert all(bytes(row.payload) == b"" and row.retain for row in rows)

"""The feed writes to the outbox only what changed: a sale, a firmware, a rename, midnight;
and a refresh reads only the machines that may have changed, not the whole fleet.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection

import pytest
from sqlalchemy import select, update

from api.clock import FakeClock, LocalCalendar
from api.payments.test_gateway import TestGateway
from api.services import ha_discovery
from api.services.container import Services
from api.services.feed_marks import WHOLE_READ_S
from api.services.ha_feed import Entries, HomeAssistantFeed, machine_removed
from api.services.machines import NewMachine
from api.settings import async_database_url
from schema import messages, topics
from schema.models import Command, Machine, MachineSlot, OutboxMessage
from tests.admin.support import vend
from tests.support.services import built_services

pytest_plugins = ["tests.support.db_fixtures"]

PREFIX = "homeassistant"
CONFIGS = 1 + 2 * 6  # the server's, and six per machine


@pytest.fixture
async def services(
    database_url: str, clock: FakeClock, gateway: TestGateway
) -> AsyncIterator[Services]:
    async with built_services(async_database_url(database_url), clock, gateway) as built:
        yield built


class ReadingFeed(HomeAssistantFeed):
    """The real feed, noting which machines each read asked for (None: all of them)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.reads: list[set[str] | None] = []

    async def _read(self, machine_ids: Collection[str] | None, now: int) -> Entries:
        self.reads.append(None if machine_ids is None else set(machine_ids))
        return await super()._read(machine_ids, now)


async def outbox(services: Services, feed: HomeAssistantFeed | None = None) -> list[OutboxMessage]:
    """The outbox's rows, taken out; with ``feed``, told to it as the bridge's drain does."""
    async with services.ctx.db.begin() as s:
        rows = list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())
        for row in rows:
            await s.delete(row)
    for row in rows if feed is not None else []:
        feed.touched(row.topic)
    return rows


async def setup(
    services: Services, clock: FakeClock, prefix: str | None, machines: int = 2
) -> ReadingFeed:
    names = ("Lobby", "Canteen", "Gym")
    for n in range(1, machines + 1):
        await services.machines.register(
            NewMachine(
                machine_id=f"vm-{n}",
                name=names[n - 1],
                price_amount=2500,
                capacity=10,
                stock=5,
            )
        )
    await outbox(services)  # registration's own desired/state
    return ReadingFeed(services.ctx.db, clock, prefix, LocalCalendar("Asia/Kolkata"), "9.9.9")


async def online(services: Services, feed: HomeAssistantFeed, *machine_ids: str) -> None:
    for mid in machine_ids:
        await services.machines.apply_status(mid, {"state": "online", "boot": 1, "fw": "1.0.0"})
    await outbox(services, feed)


async def three_online(services: Services, clock: FakeClock) -> ReadingFeed:
    """Three machines online, their figures published whole 10 s ago."""
    feed = await setup(services, clock, None, machines=3)
    await online(services, feed, "vm-1", "vm-2", "vm-3")
    await feed.snapshot()
    clock.advance(10)
    return feed


def today_of(rows: list[OutboxMessage], machine_id: str) -> messages.TodayMsg:
    (row,) = [row for row in rows if row.topic == topics.today(machine_id)]
    return messages.decode("today", bytes(row.payload))


async def test_snapshot_then_only_changes(services: Services, clock: FakeClock) -> None:
    feed = await setup(services, clock, PREFIX)
    snapshot = dict(await feed.snapshot())
    assert len(snapshot) == CONFIGS + 2
    today = messages.decode("today", snapshot[topics.today("vm-1")])
    assert (today["vends"], today["amount"], today["currency"], today["fw"]) == (0, 0, "INR", None)

    clock.advance(30)  # time passes, nothing changes: nothing is written, nothing read
    assert await feed.refresh() == 0
    assert await outbox(services) == []
    assert feed.reads == [None]  # the snapshot's

    # A firmware arrives: its ``state`` goes out through the drain, which names vm-1.
    await services.machines.apply_status("vm-1", {"state": "online", "boot": 1, "fw": "1.1.0"})
    await outbox(services, feed)
    assert await feed.refresh() == 1 + 6  # vm-1's today and configs
    assert feed.reads[-1] == {"vm-1"}
    rows = await outbox(services)
    assert all(row.retain and row.qos == 1 for row in rows)
    by_topic = {row.topic: bytes(row.payload) for row in rows}
    config = json.loads(
        by_topic[topics.discovery_config(PREFIX, "sensor", "smartvend_vm-1", "firmware")]
    )
    assert config["device"]["sw_version"] == "1.1.0"
    assert messages.decode("today", by_topic[topics.today("vm-1")])["fw"] == "1.1.0"
    assert topics.today("vm-2") not in by_topic

    # A rename written around the services names no machine: the next whole read finds it.
    async with services.ctx.db.begin() as s:
        await s.execute(update(Machine).where(Machine.id == "vm-2").values(name="Canteen 2"))
    assert await feed.refresh() == 0
    clock.advance(WHOLE_READ_S)
    assert await feed.refresh() == 6  # vm-2's configs
    assert feed.reads[-1] is None
    rows = await outbox(services)
    assert {topics.parse_discovery_config(row.topic)[2] for row in rows} == {"smartvend_vm-2"}
    assert all(json.loads(row.payload)["device"]["name"] == "Canteen 2" for row in rows)


async def test_a_sale_rewrites_that_machines_figures_alone(
    services: Services, clock: FakeClock
) -> None:
    feed = await three_online(services, clock)

    order = await vend(services, "vm-2", 2)
    await outbox(services)  # what the sale published is not told: the watermark finds it
    assert await feed.refresh() == 1
    assert feed.reads[-1] == {"vm-2"}
    rows = await outbox(services)
    figures = today_of(rows, "vm-2")
    assert (figures["vends"], figures["amount"]) == (2, 2 * 2500)
    assert figures["ts"] == clock.now()

    clock.advance(10)  # that sale is not news twice; the others were never read
    assert await feed.refresh() == 0
    assert feed.reads[-1] == {"vm-2"}

    await services.manual_refunds.refund(order, 500, by="admin", reason="one was warm")
    await outbox(services)
    assert await feed.refresh() == 1
    assert feed.reads[-1] == {"vm-2"}
    figures = today_of(await outbox(services), "vm-2")
    assert (figures["vends"], figures["amount"]) == (2, 2 * 2500 - 500)


async def test_a_sale_committed_after_a_refresh_it_predates_is_seen(
    services: Services, clock: FakeClock
) -> None:
    feed = await three_online(services, clock)
    assert await feed.refresh() == 0
    finished_before_it = clock.now() - 5
    clock.advance(10)

    await vend(services, "vm-3", 1)
    async with services.ctx.db.begin() as s:  # its transaction began before that refresh
        await s.execute(update(Command).values(finished_at=finished_before_it))
    await outbox(services)
    assert await feed.refresh() == 1
    assert feed.reads[-1] == {"vm-3"}
    figures = today_of(await outbox(services), "vm-3")
    assert (figures["vends"], figures["amount"]) == (1, 2500)


async def test_the_same_messages_as_a_whole_read(services: Services, clock: FakeClock) -> None:
    """What the refreshes wrote, applied to the snapshot, is what a fresh feed reads whole
    (but for when the figures were read)."""
    feed = await setup(services, clock, PREFIX, machines=3)
    await online(services, feed, "vm-1", "vm-2", "vm-3")
    retained = dict(await feed.snapshot())
    clock.advance(10)
    await vend(services, "vm-1", 1)
    await services.machines.apply_status("vm-3", {"state": "online", "boot": 2, "fw": "2.0.0"})
    await outbox(services, feed)
    assert await feed.refresh() == 1 + 1 + 6  # vm-1's today, vm-3's today and configs
    retained.update((row.topic, bytes(row.payload)) for row in await outbox(services))

    fresh = HomeAssistantFeed(services.ctx.db, clock, PREFIX, feed.calendar, "9.9.9")
    assert without_ts(retained) == without_ts(dict(await fresh.snapshot()))


def without_ts(retained: dict[str, bytes]) -> dict[str, object]:
    """The figures apart from when they were read (``ts``), the configs as they are."""
    out: dict[str, object] = {}
    for topic, payload in retained.items():
        if topic.endswith("/today"):
            figures = dict(messages.decode("today", payload))
            figures.pop("ts")
            out[topic] = figures
        else:
            out[topic] = payload
    return out


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
    assert feed.reads[-1] is None  # every machine's figures reset
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

    # A machine deleted from the database is cleared by the next whole read too.
    async with services.ctx.db.begin() as s:
        await s.execute(MachineSlot.__table__.delete().where(MachineSlot.machine_id == "vm-2"))
        await s.execute(Machine.__table__.delete().where(Machine.id == "vm-2"))
    clock.advance(WHOLE_READ_S)
    assert await feed.refresh() == 1 + 6
    assert all(bytes(row.payload) == b"" for row in await outbox(services))


async def test_a_decommissioned_machine_leaves_home_assistant(
    services: Services, clock: FakeClock
) -> None:
    feed = await setup(services, clock, PREFIX)
    await feed.snapshot()
    await services.machines.remove("vm-2", by="admin")
    await outbox(services, feed)  # its emptied desired and state name it
    assert await feed.refresh() == 1 + 6  # its today and its six configs, emptied
    assert feed.reads[-1] == {"vm-2"}
    rows = await outbox(services)
    assert {row.topic for row in rows} == {
        topics.today("vm-2"),
        *ha_discovery.removal_topics(PREFIX, "vm-2", ["1"]),
    }
    assert all(bytes(row.payload) == b"" and row.retain for row in rows)


async def test_a_failed_write_is_tried_again(services: Services, clock: FakeClock) -> None:
    feed = await setup(services, clock, None, machines=3)
    await feed.snapshot()
    await services.machines.apply_status("vm-1", {"state": "online", "boot": 1, "fw": "1.2.0"})
    await outbox(services, feed)

    async def refused(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the database went away")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("api.services.outgoing.enqueue_many", refused)
        with pytest.raises(RuntimeError):
            await feed.refresh()
    assert await feed.refresh() == 1
    assert today_of(await outbox(services), "vm-1")["fw"] == "1.2.0"

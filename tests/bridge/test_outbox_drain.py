"""The outbox drain: commit order, delete after acknowledgement, nothing lost on failure."""

import asyncio

import aiomqtt
import pytest
from sqlalchemy import event, select

from api.clock import FakeClock
from api.infra.db import session_class
from api.mqtt.drain import WINDOW, Outgoing, drain, publish_in_order, retained_snapshot
from api.services import outgoing
from api.services.container import Services
from broker.embedded import EmbeddedBroker
from schema import messages, topics
from schema.models import Machine, OutboxMessage, Product
from tests.bridge.helpers import running_bridge
from tests.bridge.test_vend import register


async def add_rows(services: Services, n: int) -> None:
    async with services.ctx.db.begin() as s:
        for i in range(n):
            await outgoing.enqueue(
                s, f"smartvend/v1/test/{i}", str(i).encode(), retain=i % 2 == 0, qos=i % 2, now=1
            )


async def rows(services: Services) -> list[OutboxMessage]:
    async with services.ctx.db() as s:
        return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def test_drain_publishes_in_order_and_deletes(services: Services) -> None:
    await add_rows(services, 250)
    sent: list[Outgoing] = []

    async def publish(message: Outgoing) -> None:
        sent.append(message)

    assert await drain(services.ctx.db, publish, batch=40) == 250
    assert [m.payload for m in sent] == [str(i).encode() for i in range(250)]
    assert [(m.qos, m.retain) for m in sent[:2]] == [(0, True), (1, False)]
    assert await rows(services) == []
    assert await drain(services.ctx.db, publish) == 0


async def test_a_lost_connection_keeps_the_unacknowledged_batch(services: Services) -> None:
    await add_rows(services, 30)
    acked: list[bytes] = []

    async def flaky(message: Outgoing) -> None:
        if message.payload == b"15":
            raise aiomqtt.MqttError("connection lost")
        acked.append(message.payload)

    with pytest.raises(aiomqtt.MqttError):
        await drain(services.ctx.db, flaky, batch=10)
    left = await rows(services)
    assert [r.payload for r in left] == [str(i).encode() for i in range(10, 30)]
    sent: list[bytes] = []

    async def publish(message: Outgoing) -> None:
        sent.append(message.payload)

    assert await drain(services.ctx.db, publish) == 20
    assert sent[0] == b"10"


async def test_a_row_written_while_its_predecessor_is_published_survives(
    services: Services,
) -> None:
    """A newer ``desired`` and ``state`` commit while the drain publishes the older pair,
    superseding nothing (the older rows are on the wire) but deleting them: the drain's
    delete of what it published must not take the newer rows, so ids are never reused."""
    pair = ["smartvend/v1/machines/m-1/desired", "smartvend/v1/machines/m-1/state"]

    async def write(tag: str) -> None:
        async with services.ctx.db.begin() as s:
            await outgoing.supersede(s, pair)
            encoded = [(topic, f"{tag} {topic.rsplit('/', 1)[1]}".encode()) for topic in pair]
            await outgoing.enqueue_many(s, encoded, retain=True, qos=1, now=1)

    await write("old")
    sent: list[bytes] = []

    async def publish(message: Outgoing) -> None:
        sent.append(message.payload)
        if message.payload == b"old state":
            await write("new")

    await drain(services.ctx.db, publish)
    assert sent == [b"old desired", b"old state", b"new desired", b"new state"]
    assert await rows(services) == []


async def test_an_unpublishable_row_does_not_block_the_rest(services: Services) -> None:
    await add_rows(services, 3)
    sent: list[bytes] = []

    async def publish(message: Outgoing) -> None:
        if message.payload == b"1":
            raise ValueError("Invalid topic.")
        sent.append(message.payload)

    assert await drain(services.ctx.db, publish) == 3
    assert sent == [b"0", b"2"] and await rows(services) == []


async def test_snapshot_is_the_current_state_without_a_version_bump(
    services: Services, clock: FakeClock
) -> None:
    await register(services, "vm-1")
    await register(services, "vm-2")
    await services.machines.apply_status("vm-1", {"state": "online", "boot": 3})
    async with services.ctx.db() as s:
        versions = {m.id: m.desired_version for m in (await s.scalars(select(Machine))).all()}
    snapshot = {m.topic: m for m in await retained_snapshot(services.ctx.db)}
    assert set(snapshot) == {
        topics.desired("vm-1"),
        topics.state("vm-1"),
        topics.desired("vm-2"),
        topics.state("vm-2"),
    }
    assert all(m.qos == 1 and m.retain for m in snapshot.values())
    desired = messages.decode("desired", snapshot[topics.desired("vm-1")].payload)
    assert desired["version"] == versions["vm-1"]
    state = messages.decode("state", snapshot[topics.state("vm-1")].payload)
    assert state["online"] is True and state["last_seen"] == clock.now()
    assert messages.decode("state", snapshot[topics.state("vm-2")].payload)["online"] is False
    async with services.ctx.db() as s:
        after = {m.id: m.desired_version for m in (await s.scalars(select(Machine))).all()}
    assert after == versions


async def test_a_long_list_goes_in_order_a_window_at_a_time() -> None:
    """Republishing a large fleet: in order, never more than WINDOW awaiting their ack."""
    sent: list[str] = []
    waiting = most = 0

    async def publish(message: Outgoing) -> None:
        nonlocal waiting, most
        sent.append(message.topic)
        waiting += 1
        most = max(most, waiting)
        await asyncio.sleep(0)  # the acknowledgement comes later
        waiting -= 1

    batch = [Outgoing(f"smartvend/v1/test/{i}", b"x") for i in range(WINDOW * 2 + 7)]
    await publish_in_order(publish, batch)
    assert sent == [m.topic for m in batch]
    assert most == WINDOW


class Undone(Exception):
    pass


async def test_only_a_commit_that_wrote_the_outbox_wakes_the_drain(
    services: Services, embedded: EmbeddedBroker, server_password: str
) -> None:
    """Whether each commit woke the drain, read by a commit listener of our own that runs
    right after the bridge's (listeners run in the order they were added)."""
    woke: list[bool] = []
    async with running_bridge(
        services, embedded.host, embedded.port, server_password, poll_s=3600
    ) as bridge:
        sessions = session_class(services.ctx.db)

        def committed(_session: object) -> None:
            woke.append(bridge._wake.is_set())

        event.listen(sessions, "after_commit", committed)
        try:
            async with asyncio.timeout(10):
                await bridge.wait_drained()  # the republish is done; the drain sleeps
            async with services.ctx.db.begin() as s:  # a write, but not to the outbox
                s.add(Product(id="prd-1", name="One", price_amount=1, created_at=1, updated_at=1))
            async with services.ctx.db.begin() as s:
                await outgoing.enqueue(s, "smartvend/v1/test/w", b"1", retain=False, qos=1, now=1)
            assert woke == [False, True]
            async with asyncio.timeout(10):
                await bridge.wait_drained()
            assert await rows(services) == []
            woke.clear()
            with pytest.raises(Undone):  # rolled back: nothing to publish
                async with services.ctx.db.begin() as s:
                    await outgoing.enqueue(
                        s, "smartvend/v1/test/u", b"2", retain=False, qos=1, now=1
                    )
                    raise Undone
            async with services.ctx.db.begin() as s:  # the next transaction wrote none
                s.add(Product(id="prd-2", name="Two", price_amount=1, created_at=1, updated_at=1))
            assert woke == [False]
        finally:
            event.remove(sessions, "after_commit", committed)


async def test_a_republish_drains_the_outbox_between_pages(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command written while the leader republishes a large fleet goes out after the
    page in flight, not after the whole fleet; every machine is still republished."""
    from api.mqtt import bridge as bridge_module
    from api.mqtt import drain as drain_module

    for n in range(1, 4):
        await register(services, f"vm-{n}")
    monkeypatch.setattr(drain_module, "PAGE", 1)
    sent: list[str] = []

    async def nowhere(message: Outgoing) -> None:
        pass

    await drain(services.ctx.db, nowhere)  # what registering the machines wrote
    command = "smartvend/v1/machines/vm-3/cmd/c-new"

    async def publish(message: Outgoing) -> None:
        sent.append(message.topic)
        if message.topic == topics.state("vm-1"):  # the first page: a purchase meanwhile
            async with services.ctx.db.begin() as s:
                await outgoing.enqueue(s, command, b"{}", retain=True, qos=1, now=1)

    bridge = bridge_module.Bridge(
        services, host="127.0.0.1", port=1, username="server", password="unused"
    )
    assert await bridge._republish(publish)
    assert sent.index(topics.state("vm-1")) < sent.index(command)
    assert sent.index(command) < sent.index(topics.desired("vm-2"))  # not after the fleet
    assert {topics.desired(f"vm-{n}") for n in range(1, 4)} <= set(sent)
    assert await rows(services) == []  # drained and deleted


async def test_a_page_is_read_when_its_turn_comes(services: Services) -> None:
    """A machine changed while earlier pages are published shows its change."""
    from api.mqtt.drain import retained_pages

    for n in range(1, 3):
        await register(services, f"vm-{n}")
    seen: dict[str, bool] = {}
    async for page in retained_pages(services.ctx.db, page=1):
        for message in page:
            if message.topic.endswith("/state"):
                seen[message.topic] = messages.decode("state", message.payload)["online"]
        if topics.state("vm-1") in seen and topics.state("vm-2") not in seen:
            await services.machines.apply_status("vm-2", {"state": "online", "boot": 1})
    assert seen == {topics.state("vm-1"): False, topics.state("vm-2"): True}

"""What devices and integrators must see, written to the outbox in the cause's transaction.

Nothing here publishes: the MQTT bridge drains the outbox after commit, so a
crash between commit and publish loses nothing. The payloads are built in
``api.services.outbox``.
"""

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.services import outbox, planogram, sessions, vend_lines, webhooks_out
from schema import messages, topics
from schema.models import Command, Machine, OutboxMessage, VendSession

if TYPE_CHECKING:
    from schema.messages import SalesMsg


async def enqueue(
    s: AsyncSession, topic: str, payload: bytes, *, retain: bool, qos: int, now: int
) -> None:
    await enqueue_many(s, [(topic, payload)], retain=retain, qos=qos, now=now)


async def enqueue_many(
    s: AsyncSession, items: list[tuple[str, bytes]], *, retain: bool, qos: int, now: int
) -> None:
    """Outbox rows (topic, payload) in list order, with one statement."""
    rows = [
        {"topic": topic, "payload": payload, "retain": retain, "qos": qos, "created_at": now}
        for topic, payload in items
    ]
    await s.execute(insert(OutboxMessage), rows)


class _LookUp:
    """Marker: find the machine's active lock in the database."""


LOOK_UP = _LookUp()


async def machine_changed(
    s: AsyncSession,
    machine: Machine,
    now: int,
    *,
    desired: bool = True,
    lock: VendSession | _LookUp | None = LOOK_UP,
    version_bumped: bool = False,
) -> None:
    """Publish a new ``desired`` (version + 1) and the integrators' ``state``.

    Both are retained: a newer one supersedes whatever of this machine's is
    still waiting in the outbox, so a burst of changes to one machine leaves
    one row per topic (and one publish) instead of one per change. ``lock``
    is the machine's active lock when the caller knows it; ``version_bumped``
    when the caller already raised ``desired_version`` in its own UPDATE.
    """
    active = await sessions.active_session(s, machine.id) if isinstance(lock, _LookUp) else lock
    if desired:
        await vend_changed(s, machine, active, now, version_bumped=version_bumped)
        return
    state = outbox.state_payload(machine, active is not None)
    encoded = [(topics.state(machine.id), messages.encode("state", state))]
    await supersede(s, [topic for topic, _payload in encoded])
    await enqueue_many(s, encoded, retain=True, qos=1, now=now)


SUPERSEDE_CHUNK = 5_000  # topics per DELETE (PostgreSQL: at most 32,767 bind parameters)


async def supersede(s: AsyncSession, retained_topics: list[str]) -> None:
    """Drop unpublished messages on ``retained_topics`` (``desired``/``state`` only:
    commands are never coalesced). In chunks: a fleet-wide change (every machine's
    ``today`` at midnight) names more topics than PostgreSQL takes bind parameters."""
    for start in range(0, len(retained_topics), SUPERSEDE_CHUNK):
        chunk = retained_topics[start : start + SUPERSEDE_CHUNK]
        await s.execute(
            delete(OutboxMessage).where(OutboxMessage.topic.in_(chunk)),
            execution_options={"synchronize_session": False},
        )


async def send_command(s: AsyncSession, command: Command, now: int) -> None:
    await enqueue(
        s,
        topics.cmd(command.machine_id, command.id),
        messages.encode(
            "cmd",
            outbox.command_payload(
                command, vend_lines.command_lines(await vend_lines.of_order(s, command.order_id))
            ),
        ),
        retain=True,
        qos=1,
        now=now,
    )


async def clear_command(s: AsyncSession, command: Command, now: int) -> None:
    """An empty retained payload removes the finished command from the broker."""
    topic = topics.cmd(command.machine_id, command.id)
    await enqueue(s, topic, messages.CLEAR, retain=True, qos=1, now=now)


async def sale(
    s: AsyncSession,
    machine_id: str,
    order_id: str,
    quantity: int,
    amount: int,
    currency: str,
    now: int,
    lines: list[dict[str, Any]] | None = None,
) -> None:
    payload = outbox.sale_payload(order_id, quantity, amount, currency, now, lines)
    sold = {"machine_id": machine_id, "order_id": order_id, "quantity": quantity}
    await webhooks_out.emit(s, "sale", {**sold, "amount": amount, "currency": currency}, now)
    await enqueue(
        s, topics.sales(machine_id), messages.encode("sales", payload), retain=False, qos=1, now=now
    )


async def vend_changed(
    s: AsyncSession,
    machine: Machine,
    lock: VendSession | None,
    now: int,
    *,
    command: Command | None = None,
    clear: bool = False,
    sale: "SalesMsg | None" = None,
    version_bumped: bool = False,
) -> None:
    """One vend event's messages: a sale, the command sent or cleared, desired and state.

    ``desired``'s version goes up by one (unless the caller's own UPDATE raised
    it); its and ``state``'s unpublished predecessors are superseded.
    """
    if lock is None:  # planogram changes made during a session reach the machine at its end
        await planogram.refresh_desired(s, machine)
    if not version_bumped:
        machine.desired_version += 1
    if sale is not None:
        sold = {"machine_id": machine.id, "order_id": sale["order"], "quantity": sale["quantity"]}
        event = {**sold, "amount": sale["amount"], "currency": sale["currency"]}
        await webhooks_out.emit(s, "sale", event, now)
    lines = None
    if command is not None and not clear:
        lines = vend_lines.command_lines(await vend_lines.of_order(s, command.order_id))
    made = outbox.vend_messages(machine, lock, command, clear, sale, lines)
    names = [topics.machine_topic(machine.id, kind, cmd_id) for kind, cmd_id, _b, _r in made]
    rows = [
        {
            "topic": topic,
            "payload": messages.CLEAR if body is None else messages.encode(kind, body),
            "retain": retain,
            "qos": 1,
            "created_at": now,
        }
        for topic, (kind, _cmd_id, body, retain) in zip(names, made, strict=True)
    ]
    if rows[:-2]:  # a sale and the command first: never coalesced, they keep their ids
        await s.execute(insert(OutboxMessage), rows[:-2])
    await supersede(s, names[-2:])  # then desired and state replace their predecessors
    await s.execute(insert(OutboxMessage), rows[-2:])

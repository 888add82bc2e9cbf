"""What devices and integrators must see, written in the cause's transaction.

Nothing here publishes: the MQTT bridge drains the outbox after commit, so a
crash between commit and publish loses nothing.
"""

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.lifecycle.states import SessionStatus
from schema import messages, topics
from schema.models import Command, Machine, OutboxMessage, VendSession


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


async def active_session(s: AsyncSession, machine_id: str) -> VendSession | None:
    found = await s.scalars(
        select(VendSession).where(
            VendSession.machine_id == machine_id, VendSession.status == SessionStatus.ACTIVE
        )
    )
    return found.first()


def price_of(machine: Machine) -> dict[str, Any]:
    return {"amount": machine.price_amount, "currency": machine.currency}


def desired_payload(machine: Machine, lock: VendSession | None) -> dict[str, Any]:
    display = None
    if lock is None and machine.display_code is not None:
        display = {"code": machine.display_code, "expires_at": machine.display_code_expires_at}
    return {
        "version": machine.desired_version,
        "mode": machine.mode,
        "display": display,
        "lock": None if lock is None else {"session": lock.id, "expires_at": lock.expires_at},
        "price": price_of(machine),
        "stock": machine.stock,
    }


def state_payload(machine: Machine, busy: bool) -> dict[str, Any]:
    if machine.mode == "out_of_service":
        mode = "out_of_service"
    else:
        mode = machine.reported_mode or "idle"
    return {
        "online": machine.online,
        "mode": mode,
        "stock": machine.stock,
        "busy": busy,
        "price": price_of(machine),
        "last_seen": machine.last_seen,
    }


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
    active = await active_session(s, machine.id) if isinstance(lock, _LookUp) else lock
    rows = [(topics.state(machine.id), "state", state_payload(machine, active is not None))]
    if desired:
        if not version_bumped:
            machine.desired_version += 1
        rows.insert(0, (topics.desired(machine.id), "desired", desired_payload(machine, active)))
    await supersede(s, [topic for topic, _kind, _payload in rows])
    encoded = [(topic, messages.encode(kind, payload)) for topic, kind, payload in rows]
    await enqueue_many(s, encoded, retain=True, qos=1, now=now)


async def supersede(s: AsyncSession, retained_topics: list[str]) -> None:
    """Drop unpublished messages on ``retained_topics`` (``desired``/``state`` only:
    commands are never coalesced)."""
    await s.execute(
        delete(OutboxMessage).where(OutboxMessage.topic.in_(retained_topics)),
        execution_options={"synchronize_session": False},
    )


def command_payload(command: Command) -> dict[str, Any]:
    return {
        "cmd_id": command.id,
        "action": "dispense",
        "quantity": command.quantity,
        "order": command.order_id,
        "issued_at": command.issued_at,
        "expires_at": command.expires_at,
    }


async def send_command(s: AsyncSession, command: Command, now: int) -> None:
    await enqueue(
        s,
        topics.cmd(command.machine_id, command.id),
        messages.encode("cmd", command_payload(command)),
        retain=True,
        qos=1,
        now=now,
    )


async def clear_command(s: AsyncSession, command: Command, now: int) -> None:
    """An empty retained payload removes the finished command from the broker."""
    await enqueue(s, topics.cmd(command.machine_id, command.id), b"", retain=True, qos=1, now=now)


async def sale(
    s: AsyncSession,
    machine_id: str,
    order_id: str,
    quantity: int,
    amount: int,
    currency: str,
    now: int,
) -> None:
    payload = {
        "order": order_id,
        "quantity": quantity,
        "amount": amount,
        "currency": currency,
        "ts": now,
    }
    await enqueue(
        s, topics.sales(machine_id), messages.encode("sales", payload), retain=False, qos=1, now=now
    )

"""What devices and integrators must see, written in the cause's transaction.

Nothing here publishes: the MQTT bridge drains the outbox after commit, so a
crash between commit and publish loses nothing.
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from schema import messages, topics
from schema.models import Command, Machine, OutboxMessage, VendSession


async def enqueue(
    s: AsyncSession, topic: str, payload: bytes, *, retain: bool, qos: int, now: int
) -> None:
    s.add(OutboxMessage(topic=topic, payload=payload, retain=retain, qos=qos, created_at=now))


async def active_session(s: AsyncSession, machine_id: str) -> VendSession | None:
    found = await s.scalars(
        select(VendSession).where(
            VendSession.machine_id == machine_id, VendSession.status == "active"
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


async def machine_changed(
    s: AsyncSession, machine: Machine, now: int, *, desired: bool = True
) -> None:
    """Publish a new ``desired`` (version + 1) and the integrators' ``state``."""
    lock = await active_session(s, machine.id)
    if desired:
        machine.desired_version += 1
        await enqueue(
            s,
            topics.desired(machine.id),
            messages.encode("desired", desired_payload(machine, lock)),
            retain=True,
            qos=1,
            now=now,
        )
    await enqueue(
        s,
        topics.state(machine.id),
        messages.encode("state", state_payload(machine, lock is not None)),
        retain=True,
        qos=1,
        now=now,
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

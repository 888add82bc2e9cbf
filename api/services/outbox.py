"""What devices and integrators are shown: the outbox's payloads, built from rows.

Pure functions of the rows they are given; ``api.services.outgoing`` writes
them to the outbox in the cause's transaction, and the MQTT drain
(``api.mqtt.drain``) rebuilds the retained ones from the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schema.models import Command, Machine, VendSession

if TYPE_CHECKING:
    from schema.messages import CmdMsg, DesiredMsg, DisplayMsg, PriceMsg, SalesMsg, StateMsg


def price_of(machine: Machine) -> PriceMsg:
    return {"amount": machine.price_amount, "currency": machine.currency}


def desired_payload(machine: Machine, lock: VendSession | None) -> DesiredMsg:
    display: DisplayMsg | None = None
    code, expires_at = machine.display_code, machine.display_code_expires_at
    if lock is None and code is not None and expires_at is not None:
        display = {"code": code, "expires_at": expires_at}
    return {
        "version": machine.desired_version,
        "mode": "out_of_service" if machine.mode == "out_of_service" else "in_service",
        "display": display,
        "lock": None if lock is None else {"session": lock.id, "expires_at": lock.expires_at},
        "price": price_of(machine),
        "stock": machine.stock,
    }


def state_payload(machine: Machine, busy: bool) -> StateMsg:
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


def command_payload(command: Command) -> CmdMsg:
    return {
        "cmd_id": command.id,
        "action": "dispense",
        "quantity": command.quantity,
        "order": command.order_id,
        "issued_at": command.issued_at,
        "expires_at": command.expires_at,
    }


def sale_payload(order_id: str, quantity: int, amount: int, currency: str, now: int) -> SalesMsg:
    return {
        "order": order_id,
        "quantity": quantity,
        "amount": amount,
        "currency": currency,
        "ts": now,
    }


def vend_messages(
    machine: Machine,
    lock: VendSession | None,
    command: Command | None,
    clear: bool,
    sale: SalesMsg | None,
) -> list[tuple[str, str | None, dict[str, Any] | None, bool]]:
    """What one vend event shows, in publish order: ``(kind, cmd_id, payload, retain)``.

    A sale, the command (sent, or cleared with an empty payload), then the
    machine's ``desired`` and ``state``. ``payload`` None is the empty one.
    """
    out: list[tuple[str, str | None, dict[str, Any] | None, bool]] = []
    if sale is not None:
        out.append(("sales", None, dict(sale), False))
    if command is not None:
        body = None if clear else dict(command_payload(command))
        out.append(("cmd", command.id, body, True))
    out.append(("desired", None, dict(desired_payload(machine, lock)), True))
    out.append(("state", None, dict(state_payload(machine, lock is not None)), True))
    return out

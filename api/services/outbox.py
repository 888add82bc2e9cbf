"""What devices and integrators are shown: the outbox's payloads, built from rows.

Pure functions of the rows they are given; ``api.services.outgoing`` writes
them to the outbox in the cause's transaction, and the MQTT drain
(``api.mqtt.drain``) rebuilds the retained ones from the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from schema import messages
from schema.models import Command, Machine, VendSession

if TYPE_CHECKING:
    from schema.messages import (
        CmdLineMsg,
        CmdMsg,
        DesiredMsg,
        DisplayMsg,
        PriceMsg,
        SaleLineMsg,
        SalesMsg,
        SlotMsg,
        StateMsg,
        StateSlotMsg,
    )


def carries(kind: str, field: str) -> bool:
    """Whether the wire's field table for ``kind`` has ``field`` (contract 1.1's
    additions are sent once the wire module knows them)."""
    return any(name == field for name, _spec, _required in messages.SPECS[kind][0])


def _slots_allowed(kind: str, slots: object) -> bool:
    return isinstance(slots, list) and bool(slots) and carries(kind, "slots")


def price_of(machine: Machine) -> PriceMsg:
    return {"amount": machine.price_amount, "currency": machine.currency}


def desired_payload(machine: Machine, lock: VendSession | None) -> DesiredMsg:
    display: DisplayMsg | None = None
    code, expires_at = machine.display_code, machine.display_code_expires_at
    if lock is None and code is not None and expires_at is not None:
        display = {"code": code, "expires_at": expires_at}
    shown: DesiredMsg = {
        "version": machine.desired_version,
        "mode": "out_of_service" if machine.mode == "out_of_service" else "in_service",
        "display": display,
        "lock": None if lock is None else {"session": lock.id, "expires_at": lock.expires_at},
        "price": price_of(machine),
        "stock": machine.stock,
    }
    if _slots_allowed("desired", machine.desired_slots):
        shown["slots"] = cast(
            "list[SlotMsg]",
            [
                {k: v for k, v in slot.items() if k != "product"}
                for slot in machine.desired_slots or []
            ],
        )
    return shown


def state_payload(machine: Machine, busy: bool) -> StateMsg:
    if machine.mode == "out_of_service":
        mode = "out_of_service"
    else:
        mode = machine.reported_mode or "idle"
    state: StateMsg = {
        "online": machine.online,
        "mode": mode,
        "stock": machine.stock,
        "busy": busy,
        "price": price_of(machine),
        "last_seen": machine.last_seen,
    }
    if _slots_allowed("state", machine.desired_slots):
        state["slots"] = cast("list[StateSlotMsg]", state_slots(machine.desired_slots or []))
    return state


def state_slots(desired: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Integrators' view of the slots: ``desired``'s without the motors."""
    return [{k: v for k, v in slot.items() if k not in ("motor", "product")} for slot in desired]


def command_payload(command: Command, lines: list[dict[str, Any]] | None = None) -> CmdMsg:
    cmd: CmdMsg = {
        "cmd_id": command.id,
        "action": "dispense",
        "quantity": command.quantity,
        "order": command.order_id,
        "issued_at": command.issued_at,
        "expires_at": command.expires_at,
    }
    if lines and carries("cmd", "lines"):
        cmd["lines"] = cast("list[CmdLineMsg]", lines)
    return cmd


def sale_payload(
    order_id: str,
    quantity: int,
    amount: int,
    currency: str,
    now: int,
    lines: list[dict[str, Any]] | None = None,
) -> SalesMsg:
    sale: SalesMsg = {
        "order": order_id,
        "quantity": quantity,
        "amount": amount,
        "currency": currency,
        "ts": now,
    }
    if lines and carries("sales", "lines"):
        sale["lines"] = cast("list[SaleLineMsg]", lines)
    return sale


def vend_messages(
    machine: Machine,
    lock: VendSession | None,
    command: Command | None,
    clear: bool,
    sale: SalesMsg | None,
    command_lines: list[dict[str, Any]] | None = None,
) -> list[tuple[str, str | None, dict[str, Any] | None, bool]]:
    """What one vend event shows, in publish order: ``(kind, cmd_id, payload, retain)``.

    A sale, the command (sent, or cleared with an empty payload), then the
    machine's ``desired`` and ``state``. ``payload`` None is the empty one.
    """
    out: list[tuple[str, str | None, dict[str, Any] | None, bool]] = []
    if sale is not None:
        out.append(("sales", None, dict(sale), False))
    if command is not None:
        body = None if clear else dict(command_payload(command, command_lines))
        out.append(("cmd", command.id, body, True))
    out.append(("desired", None, dict(desired_payload(machine, lock)), True))
    out.append(("state", None, dict(state_payload(machine, lock is not None)), True))
    return out

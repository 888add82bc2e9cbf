"""A vend's hottest rows, read with one prepared Core statement each: the steps between a
shopper paying and the machine's motor turning.

* **A payment found waiting.** Most verified payments find their order waiting for
  them: its lock live, no command, no payment before. For those, the order, its lock,
  its machine and its lines are read in one statement, row-locked on PostgreSQL in the
  order create-order takes them (the order, then its lock, then the machine), into
  *detached* rows as :mod:`api.services.lock_rows` reads a lock's; the vend writer's
  :func:`~api.services.vend_writer.dispatch_paid` writes the payment, the command and
  the messages with statements. Anything else (a payment seen before, an order paid
  twice, a lock that ended) goes the ORM way (:func:`api.services.vend_load.for_payment`)
  in the same transaction, on the same row locks.
* **A machine's progress report** (``accepted``, ``dispensing``): the command, its order
  and the order's lines, the command and the order row-locked, as
  :func:`api.services.vend_load.by_command` reads them; the writer's
  :func:`~api.services.vend_writer.progress` writes what moved.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import class_mapper

from api.infra.prepared import Prepared
from api.lifecycle.snapshot import Vend
from api.lifecycle.states import SessionStatus
from api.services.lock_rows import (
    LOCK_COLUMNS,
    LOCKS,
    MACHINE_COLUMNS,
    MACHINES,
    ORDERS,
    detached,
    detached_lock,
    detached_machine,
)
from api.services.vend_load import Rows, snapshot
from schema.models import Command, Order, OrderLine, Payment, table

COMMANDS, LINES, PAYMENTS = table(Command), table(OrderLine), table(Payment)
ORDER_COLUMNS = tuple(column.name for column in ORDERS.c)
LINE_COLUMNS = tuple(column.name for column in LINES.c)
COMMAND_COLUMNS = tuple(column.name for column in COMMANDS.c)
_line_cols = [LINES.c[name].label(f"line_{name}") for name in LINE_COLUMNS]

# One row per order line (one with no line's columns for an order without lines).
_PAID = Prepared(
    select(
        *(ORDERS.c[name].label(f"o_{name}") for name in ORDER_COLUMNS),
        *(LOCKS.c[name].label(f"lock_{name}") for name in LOCK_COLUMNS),
        *(MACHINES.c[name] for name in MACHINE_COLUMNS),
        *_line_cols,
        COMMANDS.c.id.label("command_id"),
        exists()
        .where(PAYMENTS.c.gateway_payment_id == bindparam("payment"))
        .label("payment_known"),
        exists().where(PAYMENTS.c.order_id == ORDERS.c.id).label("order_has_payments"),
    )
    .select_from(
        ORDERS.join(LOCKS, LOCKS.c.id == ORDERS.c.session_id)
        .join(MACHINES, MACHINES.c.id == ORDERS.c.machine_id)
        .outerjoin(COMMANDS, COMMANDS.c.order_id == ORDERS.c.id)
        .outerjoin(LINES, LINES.c.order_id == ORDERS.c.id)
    )
    .where(ORDERS.c.gateway_order_id == bindparam("gateway_order"))
    .order_by(LINES.c.position)
    .with_for_update(of=[ORDERS, LOCKS, MACHINES])
)

# A command with its order and the order's lines: one row per line, as above.
_REPORTED = Prepared(
    select(
        *(COMMANDS.c[name].label(f"c_{name}") for name in COMMAND_COLUMNS),
        *(ORDERS.c[name].label(f"o_{name}") for name in ORDER_COLUMNS),
        *_line_cols,
    )
    .select_from(
        COMMANDS.join(ORDERS, ORDERS.c.id == COMMANDS.c.order_id).outerjoin(
            LINES, LINES.c.order_id == ORDERS.c.id
        )
    )
    .where(COMMANDS.c.id == bindparam("cmd_id"), COMMANDS.c.machine_id == bindparam("machine"))
    .order_by(LINES.c.position)
    .with_for_update(of=[COMMANDS, ORDERS])
)

_NEW_ORDER = class_mapper(Order).class_manager.new_instance
_NEW_LINE = class_mapper(OrderLine).class_manager.new_instance
_NEW_COMMAND = class_mapper(Command).class_manager.new_instance


def _lines(found: list[dict[str, Any]]) -> list[OrderLine]:
    return [
        detached(_NEW_LINE, row, LINE_COLUMNS, "line_")
        for row in found
        if row["line_id"] is not None
    ]


@dataclass(frozen=True)
class PaidRows:
    """A gateway order's rows as the payment found them."""

    rows: Rows  # detached: the order, its lock (``session``), the machine, the lines
    waiting: bool  # the common case: lock live, no command, no payment of the order before
    known: bool  # the gateway's payment is counted already

    @property
    def order(self) -> Order:
        assert self.rows.order is not None
        return self.rows.order

    @property
    def vend(self) -> Vend:
        return snapshot(self.rows)


async def for_payment(
    s: AsyncSession, gateway_order_id: str, gateway_payment_id: str
) -> PaidRows | None:
    """The gateway order's rows, row-locked (PostgreSQL); None when no order has it."""
    found = await _PAID.all(s, {"gateway_order": gateway_order_id, "payment": gateway_payment_id})
    if not found:
        return None
    first = found[0]
    lock = detached_lock(first, "lock_")
    lines = _lines(found)
    live = lock.status == SessionStatus.ACTIVE
    rows = Rows(
        machine=detached_machine(first),
        order=detached(_NEW_ORDER, first, ORDER_COLUMNS, "o_"),
        session=lock,
        lock=lock if live else None,
        lines=lines,
    )
    waiting = live and first["command_id"] is None and not first["order_has_payments"]
    return PaidRows(rows, waiting, bool(first["payment_known"]))


async def reported(s: AsyncSession, cmd_id: str, machine_id: str) -> Rows | None:
    """A machine's command, its order and the order's lines, the command and the order
    row-locked (PostgreSQL), detached; None when the machine has no such command."""
    found = await _REPORTED.all(s, {"cmd_id": cmd_id, "machine": machine_id})
    if not found:
        return None
    first = found[0]
    return Rows(
        command=detached(_NEW_COMMAND, first, COMMAND_COLUMNS, "c_"),
        order=detached(_NEW_ORDER, first, ORDER_COLUMNS, "o_"),
        lines=_lines(found),
    )

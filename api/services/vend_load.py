"""A vend's rows, loaded once per event, and the lifecycle's snapshot of them.

Each loader takes the rows an event touches, under row locks on PostgreSQL in
the order the services have always taken them (a command before its order; a
payment's order, then its lock, then the machine, as create-order takes the
lock before the machine; a result's order, then the machine, then the lock),
and returns them with the pure :class:`~api.lifecycle.snapshot.Vend` the
lifecycle decides on.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.lifecycle.snapshot import (
    ONLY_SLOT,
    CommandSnap,
    Line,
    MachineSnap,
    OrderSnap,
    PaymentSnap,
    RefundSnap,
    SessionSnap,
    Vend,
)
from api.lifecycle.states import SessionStatus
from schema.models import Command, Machine, Order, OrderLine, Payment, Refund, VendSession


@dataclass
class Rows:
    """The ORM rows behind a snapshot, which the writer changes."""

    machine: Machine | None = None
    order: Order | None = None
    command: Command | None = None
    session: VendSession | None = None
    lock: VendSession | None = None  # the machine's active lock (may be ``session``)
    payments: list[Payment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    session_orders: list[tuple[str, str]] = field(default_factory=list)
    lines: list[OrderLine] = field(default_factory=list)  # the order's, in position order


@dataclass(frozen=True)
class Loaded:
    rows: Rows
    vend: Vend


def lines_of(order: Order, rows: list[OrderLine]) -> tuple[Line, ...]:
    """An order's lines as it was made (slot, product, quantity, unit price) with what came
    out; an order read without its lines is one line on the machine's only slot."""
    if not rows:
        return (Line(ONLY_SLOT, "", order.quantity, order.dispensed, order.unit_amount),)
    return tuple(
        Line(
            line.slot,
            line.product_id or "",
            line.quantity,
            line.dispensed,
            line.unit_amount,
            line.product_name,
            line.motor,
        )
        for line in rows
    )


async def _lines(s: AsyncSession, rows: Rows) -> None:
    if rows.order is not None:
        found = await s.scalars(
            select(OrderLine)
            .where(OrderLine.order_id == rows.order.id)
            .order_by(OrderLine.position)
            .with_for_update()
        )
        rows.lines = list(found.all())


def _take_lines(rows: Rows, found: Sequence[OrderLine | None]) -> None:
    """The order's lines from an outer join (None: an order without lines)."""
    rows.lines = [line for line in found if line is not None]


async def by_command(s: AsyncSession, cmd_id: str, machine_id: str) -> Loaded | None:
    """A machine's command with its vend, for a final word; None when the machine has no
    such command (a progress report reads less: ``api.services.vend_rows.reported``).

    The command, its order and the order's lines are one statement; only the command
    and the order are locked (every writer of an order's lines holds its order).
    """
    found = (
        await s.execute(
            select(Command, Order, OrderLine)
            .join(Order, Order.id == Command.order_id)
            .outerjoin(OrderLine, OrderLine.order_id == Order.id)
            .where(Command.id == cmd_id, Command.machine_id == machine_id)
            .order_by(OrderLine.position)
            .with_for_update(of=[Command, Order])
        )
    ).all()
    if not found:
        return None
    rows = Rows(command=found[0][0], order=found[0][1])
    _take_lines(rows, [line for _command, _order, line in found])
    return await _around(s, rows, session_first=False)


async def for_payment(s: AsyncSession, gateway_order_id: str) -> Loaded | None:
    """A gateway order's vend; None when no order has that gateway order.

    The order, its lock and its machine are locked in that order, as create-order
    takes the lock before the machine, by one statement that also reads the command
    and the lines; a second reads the order's money.
    """
    found = (
        await s.execute(
            select(Order, VendSession, Machine, Command, OrderLine)
            .join(VendSession, VendSession.id == Order.session_id)
            .join(Machine, Machine.id == Order.machine_id)
            .outerjoin(Command, Command.order_id == Order.id)
            .outerjoin(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.gateway_order_id == gateway_order_id)
            .order_by(OrderLine.position)
            .with_for_update(of=[Order, VendSession, Machine])
        )
    ).all()
    if not found:
        return None
    order, session, machine, command, _line = found[0]
    rows = Rows(order=order, command=command, session=session, machine=machine)
    _take_lines(rows, [line for *_rest, line in found])
    await _money(s, rows)
    return await _finish(s, rows, order.machine_id)


async def _money(s: AsyncSession, rows: Rows) -> None:
    """The order's payments and their refunds."""
    assert rows.order is not None
    money = await s.execute(
        select(Payment, Refund)
        .outerjoin(Refund, Refund.payment_id == Payment.id)
        .where(Payment.order_id == rows.order.id)
    )
    for payment, refund in money.all():
        if payment not in rows.payments:
            rows.payments.append(payment)
        if refund is not None:
            rows.refunds.append(refund)


async def by_order(s: AsyncSession, order: Order) -> Loaded:
    """An order (the caller holds its row lock) with its lock, command and money."""
    command = await s.scalar(select(Command).where(Command.order_id == order.id))
    rows = Rows(order=order, command=command)
    await _lines(s, rows)
    return await _around(s, rows, session_first=True)


async def by_session(s: AsyncSession, session: VendSession) -> Loaded:
    """A lock (the caller holds its row lock) with its machine and its orders."""
    rows = Rows(session=session)
    found = await s.execute(select(Order.id, Order.status).where(Order.session_id == session.id))
    rows.session_orders = [(order_id, status) for order_id, status in found.all()]
    return await _finish(s, rows, session.machine_id)


def order_only(order: Order) -> Loaded:
    """An order alone (the caller holds its row lock), for what concerns it alone."""
    rows = Rows(order=order)
    return Loaded(rows, snapshot(rows))


async def by_refund(s: AsyncSession, refund: Refund) -> Loaded:
    """A refund (the caller holds its row lock) with its payment and order."""
    rows = Rows(refunds=[refund])
    payment = await s.get(Payment, refund.payment_id)
    rows.payments = [] if payment is None else [payment]
    rows.order = await s.get(Order, refund.order_id, with_for_update=True)
    return Loaded(rows, snapshot(rows))


async def _around(s: AsyncSession, rows: Rows, *, session_first: bool) -> Loaded:
    order = rows.order
    assert order is not None
    if session_first:  # a payment: as create-order, the lock before its machine
        rows.session = await s.get(VendSession, order.session_id, with_for_update=True)
    rows.machine = await s.get(Machine, order.machine_id, with_for_update=True)
    if not session_first:  # a result: as it always did, the machine before the lock
        rows.session = await s.get(VendSession, order.session_id, with_for_update=True)
    await _money(s, rows)
    return await _finish(s, rows, order.machine_id)


async def _finish(s: AsyncSession, rows: Rows, machine_id: str) -> Loaded:
    if rows.machine is None:
        rows.machine = await s.get(Machine, machine_id, with_for_update=True)
    session = rows.session
    if session is not None and session.status == SessionStatus.ACTIVE:
        rows.lock = session
    else:
        rows.lock = await s.scalar(
            select(VendSession).where(
                VendSession.machine_id == machine_id, VendSession.status == SessionStatus.ACTIVE
            )
        )
    return Loaded(rows, snapshot(rows))


def machine_snap(machine: Machine, lock_id: str | None) -> MachineSnap:
    """A machine as the lifecycle sees it, with its active lock's id."""
    return MachineSnap(
        machine.id, machine.stock, machine.price_amount, machine.currency, lock_id=lock_id
    )


def snapshot(rows: Rows) -> Vend:
    """The rows as the lifecycle sees them."""
    machine, order, command, session = rows.machine, rows.order, rows.command, rows.session
    return Vend(
        machine=None
        if machine is None
        else machine_snap(machine, None if rows.lock is None else rows.lock.id),
        order=None
        if order is None
        else OrderSnap(
            order.id,
            order.machine_id,
            order.session_id,
            order.status,
            order.amount,
            order.currency,
            lines_of(order, rows.lines),
        ),
        command=None
        if command is None
        else CommandSnap(
            command.id, command.status, command.quantity, command.dispensed, command.deadline
        ),
        session=None
        if session is None
        else SessionSnap(
            session.id, session.status, session.expires_at, tuple(rows.session_orders)
        ),
        payments=tuple(PaymentSnap(p.id, p.amount, p.disposition) for p in rows.payments),
        refunds=tuple(
            RefundSnap(r.id, r.payment_id, r.amount, r.status, r.reason) for r in rows.refunds
        ),
    )

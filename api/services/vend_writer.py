"""The one writer of a vend's statuses: an event's Outcome applied to its rows, once.

The lifecycle (``api.lifecycle.vend``) decides; this module writes what it was
told, in the event's transaction, and nothing else in the server sets the
status of an order, a command, a refund or a lock (``tests/lifecycle/
test_one_writer.py`` keeps it so). What devices and integrators must see goes
to the outbox in the same transaction.
"""

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Table, bindparam, exists, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.infra.changes_from_commits import FLEET, order_channel, touch
from api.infra.prepared import Prepared
from api.lifecycle.snapshot import Dispatch, Incoming, Line, NewRefund, Outcome, Publish
from api.lifecycle.states import (
    MANUAL_REFUND,
    CommandStatus,
    OrderStatus,
    RefundStatus,
    SessionStatus,
)
from api.lifecycle.table import Event, step
from api.security.ids import new_display_code, new_id
from api.services import outgoing, planogram, vend_lines, webhooks_out
from api.services.codes import CODE_TRIES, rotate_code
from api.services.lock_rows import LOCK_COLUMNS, LOCKS, MACHINES, ORDERS, LockRows
from api.services.policy import VendPolicy
from api.services.vend_load import Rows
from schema.models import (
    Command,
    Machine,
    Order,
    OrderLine,
    Payment,
    Refund,
    VendSession,
    table,
)

if TYPE_CHECKING:
    from schema.messages import SalesMsg

log = logging.getLogger(__name__)
COMMANDS, PAYMENTS, LINES = table(Command), table(Payment), table(OrderLine)
_POLICY = VendPolicy()  # only a lock's end reads it (the new code's lifetime)


@dataclass
class Written:
    """The rows an outcome created."""

    order: Order | None = None
    payment: Payment | None = None
    command: Command | None = None
    refunds: list[Refund] = field(default_factory=list)


async def apply(
    s: AsyncSession,
    rows: Rows,
    outcome: Outcome,
    now: int,
    *,
    policy: VendPolicy = _POLICY,
    gateway: str = "",
) -> Written:
    """Write ``outcome`` to ``rows``: statuses, amounts, stock, refunds, messages."""
    written = Written()
    session, machine = rows.session, rows.machine
    if outcome.expire_unpaid is not None and session is not None:
        await _expire_unpaid(s, session.id, outcome.expire_unpaid, now)
    if outcome.new_order is not None:
        assert session is not None and machine is not None and outcome.order is not None
        rows.order = written.order = _new_order(outcome, session, gateway, now)
        s.add(written.order)
        rows.lines = _new_lines(written.order.id, outcome.new_order.lines)
        s.add_all(rows.lines)
    order = rows.order
    if outcome.payment is not None:
        assert order is not None
        written.payment = _payment(order, outcome.payment.incoming, outcome.payment.disposition)
        written.payment.created_at = now
        s.add(written.payment)
        await s.flush()  # a payment counted twice at once fails here, before anything else
    if order is not None and outcome.new_order is None:
        _order(order, outcome, now)
    command = rows.command
    if command is not None:
        _command(command, outcome, now)
    if outcome.dispatch is not None:
        assert order is not None
        rows.command = command = written.command = _new_command(order, outcome.dispatch, now)
        s.add(command)
    if outcome.session_expires_at is not None and session is not None:
        session.expires_at = outcome.session_expires_at
    for new in outcome.refunds:
        assert order is not None
        paid = written.payment.id if written.payment is not None else new.payment_id
        assert paid is not None
        refund = _refund(order, paid, new, now)
        written.refunds.append(refund)
        s.add(refund)
        await webhooks_out.emit(s, "refund", _refund_event(order, refund), now)
    if outcome.refund is not None:
        refund_id, status = outcome.refund
        for refund in rows.refunds:
            if refund.id == refund_id:
                refund.status = status
                refund.updated_at = now
    if outcome.lines is not None and order is not None:
        _count_lines(rows.lines, outcome.lines)
    if outcome.stock_taken and machine is not None:
        _take_stock(machine, outcome.stock_taken)
        if outcome.lines is not None:
            await _take_from_slots(s, machine, outcome.lines)
    lock = rows.lock
    if outcome.session is not None and session is not None:
        session.status = outcome.session
        session.ended_at = now
        session.end_reason = outcome.end_reason
        lock = None if lock is session else lock
    if written.refunds or written.command is not None or written.order is not None:
        await s.flush()
    if outcome.rotate_code and machine is not None:
        await rotate_code(s, machine, now, policy.display_code_ttl_s)
    shown = outcome.publish
    if shown.desired and machine is not None:
        sale: SalesMsg | None = None
        if shown.sale is not None and order is not None:
            sale = {
                "order": order.id,
                "quantity": shown.sale.quantity,
                "amount": shown.sale.amount,
                "currency": order.currency,
                "ts": now,
            }
            if not vend_lines.v1_order([(line.slot, line.motor) for line in shown.sale.lines]):
                sale["lines"] = [
                    {
                        "slot": line.slot,
                        "product": line.product or line.slot,
                        "quantity": line.dispensed,
                        "unit_amount": line.unit_amount,
                        "amount": line.dispensed * line.unit_amount,
                    }
                    for line in shown.sale.lines
                    if line.dispensed
                ]
        sent = command if shown.command or shown.clear else None
        lines = None
        if sent is not None and not shown.clear:
            mine = order is not None and sent.order_id == order.id and rows.lines
            found = rows.lines if mine else await vend_lines.of_order(s, sent.order_id)
            lines = vend_lines.command_lines(found)
        if lock is None:  # planogram changes made during a session reach it at its end
            await planogram.refresh_desired(s, machine)
        await outgoing.vend_changed(
            s, machine, lock, now, command=sent, command_lines=lines, clear=shown.clear, sale=sale
        )
    return written


def _new_order(outcome: Outcome, session: VendSession, gateway: str, now: int) -> Order:
    new = outcome.new_order
    assert new is not None and outcome.order is not None
    # One line: its unit price; several: the amount per unit, for reports (each line keeps
    # its own).
    unit = new.amount // max(1, new.quantity)
    return Order(
        id=new_id("ord"),
        machine_id=session.machine_id,
        session_id=session.id,
        client_id=new.client_id,
        quantity=new.quantity,
        unit_amount=unit,
        amount=new.amount,
        currency=new.currency,
        status=outcome.order,
        dispensed=0,
        gateway=gateway,
        created_at=now,
        updated_at=now,
    )


def _new_command(order: Order, dispatch: Dispatch, now: int) -> Command:
    return Command(
        id=new_id("cmd"),
        order_id=order.id,
        machine_id=order.machine_id,
        quantity=dispatch.quantity,
        status=step(CommandStatus, None, Event.CREATE),
        dispensed=0,
        issued_at=now,
        expires_at=dispatch.expires_at,
        deadline=dispatch.deadline,
    )


def _refund_event(order: Order, refund: Refund) -> dict[str, object]:
    """An outgoing webhook's ``refund`` data."""
    return {
        "order_id": order.id,
        "refund_id": refund.id,
        "machine_id": order.machine_id,
        "amount": refund.amount,
        "reason": refund.reason,
        "manual": refund.reason == MANUAL_REFUND,
        "note": refund.note,
    }


def _new_lines(order_id: str, lines: tuple[Line, ...]) -> list[OrderLine]:
    """The order's lines as priced when it was made: a later price change never moves them."""
    return [
        OrderLine(
            order_id=order_id,
            position=position,
            slot=line.slot,
            motor=line.motor,
            product_id=line.product,
            product_name=line.name,
            unit_amount=line.unit_amount,
            quantity=line.quantity,
            dispensed=0,
        )
        for position, line in enumerate(lines)
    ]


def _count_lines(rows: list[OrderLine], lines: tuple[Line, ...]) -> None:
    """Each order line's count of units out, as the lifecycle says."""
    counts = {line.slot: line.dispensed for line in lines}
    for row in rows:
        if row.slot in counts:
            row.dispensed = counts[row.slot]


async def _take_from_slots(s: AsyncSession, machine: Machine, lines: tuple[Line, ...]) -> None:
    """What came out leaves each line's slot; the v1 columns follow the slots."""
    found = await planogram.rows(s, machine.id, lock=True)
    slots = {slot.slot_id: slot for slot, _product in found}
    for line in lines:
        slot = slots.get(line.slot)
        if slot is None or not line.dispensed:
            continue
        if line.dispensed > slot.stock:
            log.warning("slot %s/%s dispensed %d of %d", machine.id, line.slot, line.dispensed,
                        slot.stock)  # fmt: skip
        slot.stock = max(0, slot.stock - line.dispensed)
    planogram.mirror(machine, found)


def _payment(order: Order, paid: Incoming, disposition: str) -> Payment:
    return Payment(
        id=new_id("pay"),
        order_id=order.id,
        gateway_payment_id=paid.gateway_payment_id,
        amount=paid.amount,
        currency=paid.currency,
        disposition=disposition,
        verified_via=paid.via,
    )


def _order(order: Order, outcome: Outcome, now: int) -> None:
    touched = False
    if outcome.order_paid:
        order.paid_at = now
        touched = True
    if outcome.order is not None:
        order.status = outcome.order
        touched = True
    if outcome.lines is not None:
        order.dispensed = sum(line.dispensed for line in outcome.lines)
        touched = True
    if touched:
        order.updated_at = now


def _command(command: Command, outcome: Outcome, now: int) -> None:
    if outcome.command is not None:
        command.status = outcome.command
    if outcome.command_accepted:
        command.accepted_at = command.accepted_at or now
    if outcome.command_dispensed is not None:
        command.dispensed = outcome.command_dispensed
    if outcome.command_finished:
        command.finished_at = now
        error = outcome.command_error
        command.error = error[:512] if error else command.error


def _refund(order: Order, payment_id: str, new: NewRefund, now: int) -> Refund:
    """A pending refund row, its id the gateway's idempotency key."""
    return Refund(
        id=new_id("rfd"),
        order_id=order.id,
        payment_id=payment_id,
        amount=new.amount,
        status=step(RefundStatus, None, Event.CREATE),
        reason=new.reason,
        note=new.note,
        attempts=0,
        created_at=now,
        updated_at=now,
    )


def _set_by_id(target: Table, prefix: str, *columns: str) -> Prepared:
    """``UPDATE target SET column = :prefix_column, ... WHERE id = :prefix_id``, prepared."""
    return Prepared(
        update(target)
        .where(target.c.id == bindparam(f"{prefix}_id"))
        .values({name: bindparam(f"{prefix}_{name}") for name in columns})
    )


_EXPIRE_UNPAID = Prepared(
    update(ORDERS)
    .where(ORDERS.c.session_id == bindparam("sid"), ORDERS.c.status == OrderStatus.CREATED)
    .values(status=bindparam("target"), updated_at=bindparam("now"))
    .returning(ORDERS.c.id)
)


async def _expire_unpaid(s: AsyncSession, session_id: str, target: OrderStatus, now: int) -> None:
    """The lock's unpaid orders expire (the lock ended, or a newer order replaces them)."""
    expired = await _EXPIRE_UNPAID.all(s, {"sid": session_id, "target": target, "now": now})
    touch(s, *(order_channel(row["id"]) for row in expired))


# -- the lock path, in statements (api.services.lock_rows) -----------------------

_TAKE = Prepared(
    update(MACHINES)
    .where(MACHINES.c.id == bindparam("m_id"), MACHINES.c.display_code == bindparam("m_code"))
    .values(
        display_code=None,
        display_code_expires_at=None,
        code_failures=0,
        desired_version=MACHINES.c.desired_version + 1,
    )
    .returning(MACHINES.c.desired_version)
)
_NEW_LOCK = Prepared(
    insert(LOCKS).values({name: bindparam(f"n_{name}") for name in (*LOCK_COLUMNS, "source")})
)
_END_LOCK = _set_by_id(LOCKS, "l", "status", "ended_at", "end_reason")
_OTHERS = MACHINES.alias("others")
# A fresh code, if no machine shows it: uniqueness checked in the same statement.
_SHOW_CODE = Prepared(
    update(MACHINES)
    .where(
        MACHINES.c.id == bindparam("m_id"),
        ~exists().where(_OTHERS.c.display_code == bindparam("m_code")),
    )
    .values(
        display_code=bindparam("m_code"),
        display_code_expires_at=bindparam("m_expires"),
        code_failures=0,
        desired_version=MACHINES.c.desired_version + 1,
        desired_slots=bindparam("m_slots"),
    )
    .returning(MACHINES.c.desired_version)
)
# What a lock's end may change (``vend.lock_ended``): anything else is not for end_lock.
_LOCK_END = ("session", "end_reason", "expire_unpaid", "rotate_code", "publish")


async def take_lock(
    s: AsyncSession,
    machine: Machine,
    code: str,
    client_id: str,
    source: str,
    now: int,
    ttl_s: int,
) -> VendSession | None:
    """Lock a detached ``machine`` still showing ``code`` (a compare-and-set that clears
    the code): the new lock, its ``desired`` and ``state`` in the outbox. None when
    another shopper took the code first."""
    version = await _TAKE.scalar(s, {"m_id": machine.id, "m_code": code})
    if version is None:
        return None
    machine.display_code = machine.display_code_expires_at = None
    machine.code_failures, machine.desired_version = 0, version
    lock = new_session(machine.id, client_id, source, now, ttl_s)
    await _NEW_LOCK.all(s, {f"n_{name}": getattr(lock, name) for name in (*LOCK_COLUMNS, "source")})
    touch(s, FLEET)
    await outgoing.vend_changed(s, machine, lock, now, version_bumped=True)
    return lock


async def end_lock(
    s: AsyncSession, rows: LockRows, outcome: Outcome, now: int, *, policy: VendPolicy = _POLICY
) -> None:
    """Write a lock's end (``vend.lock_ended``) with statements: the lock's status, its
    unpaid orders expired, a fresh code on the machine, ``desired`` and ``state``."""
    nothing = Outcome()
    rest = dataclasses.replace(outcome, **{name: getattr(nothing, name) for name in _LOCK_END})
    assert rest == nothing, f"not a lock's end: {outcome}"
    lock, machine = rows.lock, rows.machine
    if outcome.expire_unpaid is not None and any(
        status == OrderStatus.CREATED for _id, status in rows.orders
    ):
        await _expire_unpaid(s, lock.id, outcome.expire_unpaid, now)
    if outcome.session is not None:
        lock.status, lock.ended_at, lock.end_reason = outcome.session, now, outcome.end_reason
        ended = {"l_id": lock.id, "l_status": lock.status, "l_ended_at": now}
        await _END_LOCK.all(s, {**ended, "l_end_reason": lock.end_reason})
    touch(s, FLEET)
    if not outcome.rotate_code:
        assert outcome.publish == Publish(), f"a lock's end shows a new code: {outcome}"
        return
    slots = await planogram.desired_now(s, machine.id, machine.currency)
    if slots is not None:
        machine.desired_slots = slots
    expires = now + policy.display_code_ttl_s
    shown = {"m_id": machine.id, "m_expires": expires, "m_slots": machine.desired_slots}
    for _ in range(CODE_TRIES):
        code = new_display_code()
        if code == machine.display_code:
            continue
        version = await _SHOW_CODE.scalar(s, {**shown, "m_code": code})
        if version is not None:
            break
    else:  # pragma: no cover - a million codes and a fleet far smaller
        raise RuntimeError("could not find a free display code")
    machine.display_code, machine.display_code_expires_at = code, expires
    machine.code_failures, machine.desired_version = 0, version
    await outgoing.vend_changed(s, machine, None, now, version_bumped=True)


# -- a payment found waiting, in statements (api.services.vend_rows) -----------

_COMMAND_COLUMNS = tuple(column.name for column in COMMANDS.c)
_PAYMENT_COLUMNS = tuple(column.name for column in PAYMENTS.c)
_NEW_PAYMENT = Prepared(
    insert(PAYMENTS).values({name: bindparam(f"p_{name}") for name in _PAYMENT_COLUMNS})
)
_NEW_COMMAND = Prepared(
    insert(COMMANDS).values({name: bindparam(f"c_{name}") for name in _COMMAND_COLUMNS})
)
_ORDER_PAID = _set_by_id(ORDERS, "o", "status", "paid_at", "updated_at")
_LOCK_LASTS = _set_by_id(LOCKS, "l", "expires_at")
_NEXT_DESIRED = Prepared(
    update(MACHINES)
    .where(MACHINES.c.id == bindparam("m_id"))
    .values(desired_version=MACHINES.c.desired_version + 1)
    .returning(MACHINES.c.desired_version)
)
# What a payment found waiting changes when it dispatches (``vend.payment_verified``).
_DISPATCH = ("payment", "order_paid", "order", "dispatch", "session_expires_at", "publish")
_DISPATCH_SHOWN = Publish(desired=True, command=True)


def dispatches(outcome: Outcome) -> bool:
    """Whether ``outcome`` is a counted payment's dispatch, which :func:`dispatch_paid`
    writes; anything else goes through :func:`apply`."""
    nothing = Outcome()
    rest = dataclasses.replace(outcome, **{name: getattr(nothing, name) for name in _DISPATCH})
    return (
        rest == nothing
        and outcome.dispatch is not None
        and outcome.payment is not None
        and outcome.order is not None
        and outcome.publish == _DISPATCH_SHOWN
    )


async def dispatch_paid(s: AsyncSession, rows: Rows, outcome: Outcome, now: int) -> None:
    """Write a payment's dispatch (:func:`dispatches`) to the detached rows of
    ``api.services.vend_rows``, with statements: the payment first (a payment counted
    twice at once fails there), the command, the order paid, the lock lasting the vend,
    and the command, ``desired`` and ``state`` in the outbox."""
    assert dispatches(outcome), f"not a dispatch: {outcome}"
    order, lock, machine = rows.order, rows.lock, rows.machine
    assert order is not None and lock is not None and machine is not None
    assert outcome.payment is not None and outcome.dispatch is not None
    payment = _payment(order, outcome.payment.incoming, outcome.payment.disposition)
    payment.created_at = now
    await _NEW_PAYMENT.all(s, {f"p_{name}": getattr(payment, name) for name in _PAYMENT_COLUMNS})
    command = rows.command = _new_command(order, outcome.dispatch, now)
    await _NEW_COMMAND.all(s, {f"c_{name}": getattr(command, name) for name in _COMMAND_COLUMNS})
    _order(order, outcome, now)
    paid = {"o_id": order.id, "o_status": order.status, "o_paid_at": order.paid_at}
    await _ORDER_PAID.all(s, {**paid, "o_updated_at": order.updated_at})
    until = outcome.session_expires_at
    if until is not None and until != lock.expires_at:
        lock.expires_at = until
        await _LOCK_LASTS.all(s, {"l_id": lock.id, "l_expires_at": until})
    machine.desired_version = await _NEXT_DESIRED.scalar(s, {"m_id": machine.id})
    touch(s, order_channel(order.id), FLEET)
    lines = vend_lines.command_lines(rows.lines)
    await outgoing.vend_changed(
        s, machine, lock, now, command=command, command_lines=lines, version_bumped=True
    )


# -- a machine's progress report, in statements (api.services.vend_rows) ----------

_COMMAND_MOVED = _set_by_id(COMMANDS, "c", "status", "dispensed", "accepted_at")
_ORDER_MOVED = _set_by_id(ORDERS, "o", "status", "dispensed", "updated_at")
_LINE_COUNTED = _set_by_id(LINES, "l", "dispensed")
# What a progress report changes (``vend.machine_result`` short of a final word).
_PROGRESS = ("command", "command_accepted", "command_dispensed", "order", "lines")


async def progress(s: AsyncSession, rows: Rows, outcome: Outcome, now: int) -> None:
    """Write a progress report's outcome to the detached rows of
    ``api.services.vend_rows.reported`` with statements: the command, the order and the
    lines whose count moved."""
    nothing = Outcome()
    rest = dataclasses.replace(outcome, **{name: getattr(nothing, name) for name in _PROGRESS})
    assert rest == nothing, f"not a progress report: {outcome}"
    if not outcome.changed:
        return
    command, order = rows.command, rows.order
    assert command is not None and order is not None
    _command(command, outcome, now)
    moved = {"c_id": command.id, "c_status": command.status, "c_dispensed": command.dispensed}
    await _COMMAND_MOVED.all(s, {**moved, "c_accepted_at": command.accepted_at})
    _order(order, outcome, now)
    counts = {"o_id": order.id, "o_status": order.status, "o_dispensed": order.dispensed}
    await _ORDER_MOVED.all(s, {**counts, "o_updated_at": order.updated_at})
    if outcome.lines is not None:
        before = [line.dispensed for line in rows.lines]
        _count_lines(rows.lines, outcome.lines)
        for line, was in zip(rows.lines, before, strict=True):
            if line.dispensed != was:
                await _LINE_COUNTED.all(s, {"l_id": line.id, "l_dispensed": line.dispensed})
    touch(s, order_channel(order.id), FLEET)


def _take_stock(machine: Machine, dispensed: int) -> None:
    if dispensed > machine.stock:
        # The machine held more than we were told: book the difference as a
        # correction so stock == restocked - dispensed still adds up.
        log.warning(
            "machine %s dispensed %d with %d in stock", machine.id, dispensed, machine.stock
        )
        machine.restocked_total += dispensed - machine.stock
        machine.stock = dispensed
    machine.stock -= dispensed
    machine.dispensed_total += dispensed


def new_session(machine_id: str, client_id: str, source: str, now: int, ttl_s: int) -> VendSession:
    """A lock taken with the code on the display (the lock path's one status write)."""
    return VendSession(
        id=new_id("ses"),
        machine_id=machine_id,
        client_id=client_id,
        source=source[:64] or None,
        status=step(SessionStatus, None, Event.CREATE),
        created_at=now,
        expires_at=now + ttl_s,
    )

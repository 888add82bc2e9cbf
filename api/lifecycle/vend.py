"""One decision per vend event: a snapshot in, every change out (CONTRACT 4).

Each function takes one :class:`~api.lifecycle.snapshot.Vend`, the event's
input and ``now``, and returns one :class:`~api.lifecycle.snapshot.Outcome`:
status moves, amounts per line, messages to publish, a new display code. The
services load the snapshot, call one of these once, and apply the answer once
(``api.services.vend_writer``). Pure: no database, no clock, no network.
"""

from collections.abc import Sequence
from typing import Protocol

from api.lifecycle import decide
from api.lifecycle.decide import ManualVerdict, PaymentVerdict
from api.lifecycle.snapshot import (
    Dispatch,
    Incoming,
    Line,
    NewOrder,
    NewPayment,
    NewRefund,
    OrderSnap,
    Outcome,
    PaymentSnap,
    Publish,
    Sale,
    Vend,
)
from api.lifecycle.states import (
    BUSY,
    COMMAND_FINAL,
    MANUAL_REFUND,
    PROGRESS,
    OrderStatus,
    PaymentDisposition,
    RefundStatus,
    SessionStatus,
)
from api.lifecycle.table import Event, allowed, moves, step

# Refusals: an Outcome's ``refusal``, which the service turns into its error.
SESSION_EXPIRED = "session_expired"
NOT_ENOUGH_STOCK = "insufficient_stock"
VEND_IN_FLIGHT = "vend_in_flight"
NOT_ACTIVE = "not_active"
SILENCE = "no final result before the deadline"
RESULT = PROGRESS | COMMAND_FINAL  # what a machine may say about a command


class Terms(Protocol):
    """The numbers the rules run on (``api.services.policy.VendPolicy`` has them)."""

    @property
    def lock_ttl_s(self) -> int: ...
    @property
    def command_ttl_s(self) -> int: ...
    @property
    def unit_run_s(self) -> int: ...


# Lines


def spread(lines: tuple[Line, ...], dispensed: int) -> tuple[Line, ...]:
    """A machine's total count laid over the lines in order (it runs them in order)."""
    left = dispensed
    out = []
    for line in lines:
        took = min(line.quantity, max(line.dispensed, left))
        out.append(
            Line(
                line.slot,
                line.product,
                line.quantity,
                took,
                line.unit_amount,
                line.name,
                line.motor,
            )
        )
        left = max(0, left - took)
    return tuple(out)


def counted(
    lines: tuple[Line, ...], dispensed: int, reported: dict[str, int] | None
) -> tuple[Line, ...]:
    """The lines with what came out: the machine's own per-line counts when it sent them
    and they are sound (each within its line, adding up to the total), else the total
    laid over the lines in order. Counts never go down."""
    if reported is not None:
        out = tuple(
            Line(
                line.slot,
                line.product,
                line.quantity,
                max(line.dispensed, reported.get(line.slot, 0)),
                line.unit_amount,
                line.name,
                line.motor,
            )
            for line in lines
        )
        sound = all(0 <= reported.get(line.slot, 0) <= line.quantity for line in lines)
        known = set(reported) <= {line.slot for line in lines}
        if sound and known and sum(line.dispensed for line in out) == dispensed:
            return out
    return spread(lines, dispensed)


def undispensed(lines: Sequence[Line]) -> int:
    """The sum of (quantity - dispensed) x unit price per line."""
    return sum(line.short * line.unit_amount for line in lines)


def refund_due(lines: tuple[Line, ...], paid: int, refunded: int) -> int:
    """What did not come out, never more than is left of what was paid."""
    return min(undispensed(lines), max(0, paid - refunded))


# Events


def order_requested(
    vend: Vend, client_id: str, lines: tuple[Line, ...], terms: Terms, now: int
) -> Outcome:
    """create-order on a held lock, its lines priced by the server from the machine's
    slots: it replaces the lock's unpaid orders."""
    session, machine = vend.session, vend.machine
    assert session is not None and machine is not None
    if not decide.session_live(session.status, session.expires_at, now):
        return Outcome(refusal=SESSION_EXPIRED)
    quantity = sum(line.quantity for line in lines)
    if decide.stock_verdict(machine.stock, quantity) is not PaymentVerdict.DISPATCH:
        return Outcome(refusal=NOT_ENOUGH_STOCK)
    if any(status in BUSY for _id, status in session.orders):
        return Outcome(refusal=VEND_IN_FLIGHT)
    return Outcome(
        new_order=NewOrder(client_id, lines, machine.currency),
        order=step(OrderStatus, None, Event.CREATE),
        expire_unpaid=step(OrderStatus, OrderStatus.CREATED, Event.REPLACED),
        session_expires_at=max(session.expires_at, now + terms.lock_ttl_s),
        publish=Publish(desired=True),
    )


def gateway_refused(vend: Vend) -> Outcome:
    """The gateway would not open the order: it fails before anyone could pay."""
    assert vend.order is not None
    return Outcome(order=step(OrderStatus, vend.order.status, Event.GATEWAY_REFUSED))


def payment_verified(vend: Vend, paid: Incoming, terms: Terms, now: int) -> Outcome:
    """Count a verified payment once: dispatch in time and in full, or refund it all."""
    order, session, machine = vend.order, vend.session, vend.machine
    assert order is not None and session is not None and machine is not None
    verdict = decide.payment_verdict(
        order.status,
        right_amount=paid.amount == order.amount and paid.currency == order.currency,
        lock_live=decide.session_live(session.status, session.expires_at, now),
    )
    if verdict is PaymentVerdict.DISPATCH:
        verdict = decide.stock_verdict(machine.stock, order.quantity)
    payment = NewPayment(paid, verdict.disposition)
    counted = verdict is not PaymentVerdict.DUPLICATE
    if verdict.refund_reason is not None:
        if paid.amount <= 0:
            return Outcome(payment=payment, order_paid=counted)
        follows = decide.refund_moves_order(verdict.refund_reason, verdict.disposition)
        return Outcome(
            payment=payment,
            order_paid=counted,
            order=step(OrderStatus, order.status, Event.REFUND_OPENED) if follows else None,
            refunds=(NewRefund(None, paid.amount, verdict.refund_reason),),
        )
    expires_at = now + terms.command_ttl_s
    deadline = decide.command_deadline(expires_at, order.quantity, terms.unit_run_s)
    return Outcome(
        payment=payment,
        order_paid=True,
        order=step(OrderStatus, order.status, Event.PAYMENT_COUNTED),
        dispatch=Dispatch(order.quantity, expires_at, deadline),
        # The lock lasts until the vend ends, however long the machine takes.
        session_expires_at=max(session.expires_at, deadline),
        publish=Publish(desired=True, command=True),
    )


def settles(reported: str) -> bool:
    """A final word settles the vend (sale, refund, the lock's end); progress does not."""
    return reported in COMMAND_FINAL


def machine_result(
    vend: Vend,
    reported: str,
    dispensed: int,
    error: str | None,
    *,
    per_line: dict[str, int] | None = None,
) -> Outcome:
    """A machine's word about its command, which may come twice, late or out of order.

    A final status is final; progress never moves a command backwards; the
    units counted only grow and never pass the quantity ordered.
    """
    command, order = vend.command, vend.order
    assert command is not None and order is not None
    if command.status in COMMAND_FINAL or reported not in RESULT:
        return Outcome()
    count = min(max(command.dispensed, dispensed), command.quantity)
    if reported in COMMAND_FINAL:
        return _settle(vend, order, Event(reported), count, error, per_line)
    lines = counted(order.lines, count, per_line)
    event = Event(reported)
    moved = moves(command=(command.status, event), order=(order.status, event), strict=False)
    if moved.command is None and count == command.dispensed:
        return Outcome()  # progress already known
    return Outcome(
        command=moved.command,
        command_accepted=moved.command is not None,
        command_dispensed=count,
        order=moved.order,
        lines=lines,
    )


def deadline_passed(vend: Vend, now: int) -> Outcome:
    """No final word by the command's deadline: it ends ``unknown`` with what was counted."""
    command, order = vend.command, vend.order
    assert command is not None and order is not None
    if not decide.silent(command.status, command.deadline, now):
        return Outcome()
    return _settle(vend, order, Event.SILENT, command.dispensed, SILENCE)


def _settle(
    vend: Vend,
    order: OrderSnap,
    event: Event,
    dispensed: int,
    error: str | None,
    per_line: dict[str, int] | None = None,
) -> Outcome:
    """A final word: a sale of what came out, a refund of the rest, the lock ends."""
    assert vend.command is not None
    lines = counted(order.lines, dispensed, per_line)
    payment = _counted(vend.payments)
    earlier = [r for r in vend.refunds if r.payment_id == payment.id]
    done = sum(r.amount for r in earlier if r.status != RefundStatus.FAILED)
    amount = refund_due(lines, payment.amount, done)
    short = dispensed < order.quantity
    automatic = any(r.reason != MANUAL_REFUND for r in earlier)
    refunds: tuple[NewRefund, ...] = ()
    order_event: Event | None = Event.VEND_COMPLETE
    if short:
        # Only a refund moves a short order (none is owed at a price of nothing).
        order_event = Event.REFUND_OPENED if amount > 0 and not automatic else None
    session = vend.session
    ends = session is not None and session.status == SessionStatus.ACTIVE
    moved = moves(
        command=(vend.command.status, event),
        order=(order.status, order_event),
        session=(session.status, Event.VEND_FINISHED) if session is not None and ends else None,
        unpaid=Event.LOCK_ENDED if ends else None,
    )
    assert moved.command is not None
    if order_event is Event.REFUND_OPENED:
        shares = tuple((line.slot, line.short * line.unit_amount) for line in lines)
        refunds = (NewRefund(payment.id, amount, f"dispense_{moved.command}", shares),)
    sold = sum(line.dispensed * line.unit_amount for line in lines)
    return Outcome(
        order=moved.order,
        lines=lines,
        command=moved.command,
        command_dispensed=dispensed,
        command_finished=True,
        command_error=error,
        refunds=refunds,
        stock_taken=dispensed,
        session=moved.session,
        end_reason=Event.VEND_FINISHED if ends else None,
        expire_unpaid=moved.unpaid,
        rotate_code=ends,
        publish=Publish(
            desired=True, clear=True, sale=Sale(dispensed, sold, lines) if dispensed else None
        ),
    )


def _counted(payments: tuple[PaymentSnap, ...]) -> PaymentSnap:
    found = [p for p in payments if p.disposition == PaymentDisposition.COUNTED]
    assert found, "a dispatched order always has its payment"
    return found[0]


def lock_ended(vend: Vend, event: Event, now: int, *, vend_keeps_it: bool = True) -> Outcome:
    """A lock ends (unlocked, or ran out): unpaid orders expire, the machine shows a new code.

    A vend in flight keeps its lock (``vend_keeps_it``), unless the lock is
    found run out while someone tries a code at the machine.
    """
    session = vend.session
    assert session is not None
    if session.status != SessionStatus.ACTIVE:
        return Outcome(refusal=NOT_ACTIVE)
    if vend_keeps_it and any(status in BUSY for _id, status in session.orders):
        return Outcome(refusal=VEND_IN_FLIGHT)
    moved = moves(session=(session.status, event), unpaid=Event.LOCK_ENDED)
    return Outcome(
        session=moved.session,
        end_reason=str(event),
        expire_unpaid=moved.unpaid,
        rotate_code=True,
        publish=Publish(desired=True),
    )


def manual_refund(vend: Vend, amount: int, note: str | None = None) -> Outcome:
    """An operator's refund changes money, not history, and never more than was paid;
    ``note`` is the operator's reason, kept with the refund."""
    payment = next((p for p in vend.payments if p.disposition == PaymentDisposition.COUNTED), None)
    refunds = [r for r in vend.refunds if payment is not None and r.payment_id == payment.id]
    done = sum(r.amount for r in refunds if r.status != RefundStatus.FAILED)
    verdict = decide.manual_verdict(
        amount,
        None if payment is None else payment.amount,
        done,
        None if vend.command is None else vend.command.status,
    )
    if verdict is not ManualVerdict.ALLOWED:
        return Outcome(refusal=verdict.value)
    assert payment is not None
    return Outcome(refunds=(NewRefund(payment.id, amount, MANUAL_REFUND, note=note),))


def refund_word(vend: Vend, refund_id: str, gateway_status: str) -> Outcome:
    """The gateway's final word on a refund; an automatic one ends its order ``refunded``."""
    refund = next(r for r in vend.refunds if r.id == refund_id)
    event = decide.refund_event(gateway_status)
    if event is None or not allowed(RefundStatus, refund.status, event):
        return Outcome()  # not final yet, the same word again, or stale after processed
    moved = (refund.id, step(RefundStatus, refund.status, event))
    payment = next((p for p in vend.payments if p.id == refund.payment_id), None)
    order = vend.order
    if refund.reason == MANUAL_REFUND or payment is None or order is None:
        return Outcome(refund=moved)  # money, not history: the order keeps its status
    follows = decide.refund_moves_order(refund.reason, payment.disposition)
    if not (follows and allowed(OrderStatus, order.status, event)):
        return Outcome(refund=moved)
    return Outcome(refund=moved, order=step(OrderStatus, order.status, event))

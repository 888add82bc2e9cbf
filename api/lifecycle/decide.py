"""The vend rules (CONTRACT 4) as pure decisions: state, input and ``now`` in, a verdict out.

The services load rows, ask here, and save what they are told; nothing here
reads a database, a clock or the network.
"""

from enum import StrEnum

from api.lifecycle.states import (
    COMMAND_FINAL,
    COUNTED,
    MANUAL_REFUND,
    ORDER_FINAL,
    CommandStatus,
    OrderStatus,
    PaymentDisposition,
    RefundStatus,
    SessionStatus,
)
from api.lifecycle.table import Event

MAX_REFUND_ATTEMPTS = 8  # a refund the gateway keeps refusing is failed after this many


# Payments


class PaymentVerdict(StrEnum):
    """What a verified payment does to its order; every value but DISPATCH is a refund reason."""

    DISPATCH = "dispatch"
    DUPLICATE = "duplicate_payment"
    WRONG_AMOUNT = "wrong_amount"
    LATE = "late_payment"
    NO_STOCK = "insufficient_stock"

    @property
    def disposition(self) -> PaymentDisposition:
        extra = self is PaymentVerdict.DUPLICATE
        return PaymentDisposition.EXTRA if extra else PaymentDisposition.COUNTED

    @property
    def refund_reason(self) -> str | None:
        return None if self is PaymentVerdict.DISPATCH else self.value


def session_live(status: str, expires_at: int, now: int) -> bool:
    """A lock still held: active and not run out."""
    return status == SessionStatus.ACTIVE and expires_at > now


# Locks


class Availability(StrEnum):
    """Whether a machine may be locked once its code was right."""

    AVAILABLE = "available"
    OUT_OF_SERVICE = "machine_out_of_service"
    OFFLINE = "machine_offline"
    EMPTY = "insufficient_stock"


def availability(mode: str, online: bool, stock: int) -> Availability:
    if mode != "in_service":
        return Availability.OUT_OF_SERVICE
    if not online:
        return Availability.OFFLINE
    if stock < 1:
        return Availability.EMPTY
    return Availability.AVAILABLE


def code_shown(shown: str | None, expires_at: int | None, code: str, now: int) -> bool:
    """``code`` is the one on the machine's display, and it has not run out."""
    return shown is not None and shown == code and (expires_at or 0) > now


def code_spent(failures: int, budget: int, shown: str | None) -> bool:
    """A machine's failure budget for wrong codes is spent: its code changes."""
    return failures >= budget and bool(shown)


def payment_verdict(order_status: str, right_amount: bool, lock_live: bool) -> PaymentVerdict:
    """A verified payment of an order: count it once, dispense only in time and in full.

    An order that already has its payment gets a duplicate, refunded in full; a
    wrong amount, or a payment after the lock ended or the order was replaced,
    is refunded in full and never dispensed.
    """
    if order_status in COUNTED:
        return PaymentVerdict.DUPLICATE
    if not right_amount:
        return PaymentVerdict.WRONG_AMOUNT
    if order_status != OrderStatus.CREATED or not lock_live:
        return PaymentVerdict.LATE
    return PaymentVerdict.DISPATCH


def stock_verdict(stock: int, quantity: int) -> PaymentVerdict:
    """The last check before a command: the machine may have been restocked down."""
    return PaymentVerdict.NO_STOCK if stock < quantity else PaymentVerdict.DISPATCH


def shopper_done(order_status: str, refund_status: str | None) -> bool:
    """Nothing more will change for the shopper: a final order, its refund not pending."""
    return order_status in ORDER_FINAL and refund_status != RefundStatus.PENDING


# Device results


def command_deadline(expires_at: int, quantity: int, unit_run_s: int) -> int:
    """When silence about a command starts to count as ``unknown``."""
    return expires_at + unit_run_s * quantity


def silent(status: str, deadline: int, now: int) -> bool:
    """No final word by the deadline: the command ends ``unknown``."""
    return status not in COMMAND_FINAL and deadline <= now


def confirmed_status(dispensed: int, quantity: int) -> CommandStatus:
    """The HTTP fallback's final word: all units out is success, fewer is failure."""
    return CommandStatus.SUCCEEDED if dispensed >= quantity else CommandStatus.FAILED


def undispensed(quantity: int, dispensed: int, unit_amount: int) -> int:
    """What a vend refunds: ``quantity - dispensed`` units at the order's unit price."""
    return max(0, quantity - dispensed) * unit_amount


# Refunds


def refund_moves_order(reason: str, disposition: str) -> bool:
    """Only the automatic refund of the counted payment moves its order; a manual one never."""
    return reason != MANUAL_REFUND and disposition == PaymentDisposition.COUNTED


def refund_event(gateway_status: str) -> Event | None:
    """The gateway's final word on a refund, or None when it is not final yet."""
    if gateway_status == RefundStatus.PROCESSED:
        return Event.PROCESSED
    if gateway_status == RefundStatus.FAILED:
        return Event.REFUND_FAILED
    return None


def attempts_spent(attempts: int) -> bool:
    return attempts >= MAX_REFUND_ATTEMPTS


def vend_over(command_status: str | None) -> bool:
    """No command, or its final word is in: money may be given back by hand."""
    return command_status is None or command_status in COMMAND_FINAL


class ManualVerdict(StrEnum):
    ALLOWED = "allowed"
    NOT_PAID = "not_paid"
    VEND_RUNNING = "vend_running"
    REFUNDED_IN_FULL = "refunded_in_full"
    OUT_OF_RANGE = "out_of_range"


def refund_room(paid: int, refunded: int) -> int:
    """What an operator may still refund: what was paid less what was refunded."""
    return max(0, paid - refunded)


def manual_verdict(
    amount: int, paid: int | None, refunded: int, command_status: str | None
) -> ManualVerdict:
    """An operator's refund changes money, not history, and never more than was paid."""
    if paid is None:
        return ManualVerdict.NOT_PAID
    if not vend_over(command_status):
        return ManualVerdict.VEND_RUNNING
    room = refund_room(paid, refunded)
    if room <= 0:
        return ManualVerdict.REFUNDED_IN_FULL
    if not 1 <= amount <= room:
        return ManualVerdict.OUT_OF_RANGE
    return ManualVerdict.ALLOWED

"""The statuses of a vend's records, and the sets of them that rules speak about.

The values are the vocabulary's (``schema.statuses``), which also gives the
database's check constraints and the wire's result statuses; each ``StrEnum``
here is checked against it when this module is imported, so a status added
in one place and not the other fails at once.
"""

from enum import StrEnum

from schema import statuses


class OrderStatus(StrEnum):
    CREATED = "created"
    PAID = "paid"
    DISPENSING = "dispensing"
    DISPENSED = "dispensed"
    FAILED = "failed"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"
    EXPIRED = "expired"


class CommandStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class RefundStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"


class SessionStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"
    EXPIRED = "expired"


class PaymentDisposition(StrEnum):
    COUNTED = "counted"  # the order's one payment
    EXTRA = "extra"  # a second payment of an order: refunded in full


def _spells(kind: type[StrEnum], vocabulary: tuple[str, ...]) -> None:
    if tuple(kind) != vocabulary:
        raise TypeError(f"{kind.__name__} differs from schema.statuses: {vocabulary}")


_spells(OrderStatus, statuses.ORDER)
_spells(CommandStatus, statuses.COMMAND)
_spells(RefundStatus, statuses.REFUND)
_spells(SessionStatus, statuses.SESSION)

# A verified payment counts once: an order in one of these already has its payment.
COUNTED = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.DISPENSING,
        OrderStatus.DISPENSED,
        OrderStatus.REFUND_PENDING,
        OrderStatus.REFUNDED,
    }
)
# Orders a payment may still arrive for (the reconciler asks the gateway about them).
UNPAID = frozenset({OrderStatus.CREATED, OrderStatus.EXPIRED})
# A vend in flight: its lock is held and no new order or unlock may start.
BUSY = frozenset({OrderStatus.PAID, OrderStatus.DISPENSING})
# Nothing more will happen to the order by itself.
ORDER_FINAL = frozenset(
    {OrderStatus.DISPENSED, OrderStatus.REFUNDED, OrderStatus.EXPIRED, OrderStatus.FAILED}
)
# What a device reports while a command runs, and its last word.
PROGRESS = frozenset(CommandStatus(s) for s in statuses.COMMAND_PROGRESS)
COMMAND_FINAL = frozenset(CommandStatus(s) for s in statuses.COMMAND_FINAL)
# A final word that leaves units undispensed: their money goes back.
SHORT = frozenset(CommandStatus(s) for s in statuses.COMMAND_SHORT)
# The shopper's vend is over (feedback may be given): final, or its refund under way.
ENDED = ORDER_FINAL | {OrderStatus.REFUND_PENDING}
REFUND_FINAL = frozenset({RefundStatus.PROCESSED, RefundStatus.FAILED})
# A gateway payment in one of these is money the shopper has given.
PAYABLE = ("captured", "authorized")
# Refund.reason of an operator's refund; every other reason is automatic.
MANUAL_REFUND = statuses.MANUAL_REFUND


def ordered(states: frozenset[str]) -> tuple[str, ...]:
    """A set of statuses in a stable order, for SQL ``IN`` lists and messages."""
    return tuple(sorted(states))

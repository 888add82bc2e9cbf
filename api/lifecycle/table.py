"""The vend's state diagram as one table: (from, event, to), for every kind of record.

Services move a record with ``step(status, event)``, which reads this table and
nothing else, and ``api.lifecycle.diagram`` draws docs/architecture.md's state
diagrams from it; a move the table does not hold is a bug, never a fallback.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from api.lifecycle.states import CommandStatus, OrderStatus, RefundStatus, SessionStatus

Status = OrderStatus | CommandStatus | RefundStatus | SessionStatus
KINDS: tuple[type[Status], ...] = (OrderStatus, CommandStatus, RefundStatus, SessionStatus)
S = TypeVar("S", OrderStatus, CommandStatus, RefundStatus, SessionStatus)


class Event(StrEnum):
    CREATE = "create"  # a new record, in its first state
    GATEWAY_REFUSED = "gateway_refused"
    REPLACED = "replaced"  # a newer order of the same lock
    LOCK_ENDED = "lock_ended"
    PAYMENT_COUNTED = "payment_counted"  # verified, in time, right amount, stock there
    REFUND_OPENED = "refund_opened"  # the automatic refund of a counted payment
    # What the machine reports about a command (CONTRACT 1, results), and its silence.
    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    SILENT = "silent"  # no final word by the command's deadline
    VEND_COMPLETE = "vend_complete"  # every unit came out
    # The gateway's final word on a refund.
    PROCESSED = "processed"
    REFUND_FAILED = "refund_failed"
    # How a lock ends (VendSession.end_reason).
    VEND_FINISHED = "vend_finished"
    UNLOCKED = "unlocked"


@dataclass(frozen=True)
class Transition:
    source: Status | None  # None: the record is being created
    event: Event
    target: Status
    why: str = ""  # what the diagram says on the arrow, when the event's name is not enough


_O, _C, _R, _S, _E = OrderStatus, CommandStatus, RefundStatus, SessionStatus, Event
_RUNNING = (_C.PENDING, _C.ACCEPTED, _C.RUNNING)

TRANSITIONS: tuple[Transition, ...] = (
    # Orders
    Transition(None, _E.CREATE, _O.CREATED, "create-order, lock held"),
    Transition(_O.CREATED, _E.GATEWAY_REFUSED, _O.FAILED),
    Transition(_O.CREATED, _E.REPLACED, _O.EXPIRED, "a newer order of the lock"),
    Transition(_O.CREATED, _E.LOCK_ENDED, _O.EXPIRED),
    Transition(_O.CREATED, _E.PAYMENT_COUNTED, _O.PAID, "verified in time, browser or webhook"),
    Transition(_O.CREATED, _E.REFUND_OPENED, _O.REFUND_PENDING, "paid late, wrong, or no stock"),
    Transition(_O.EXPIRED, _E.REFUND_OPENED, _O.REFUND_PENDING, "a payment arrives anyway"),
    Transition(_O.FAILED, _E.REFUND_OPENED, _O.REFUND_PENDING, "a payment arrives anyway"),
    Transition(_O.PAID, _E.ACCEPTED, _O.DISPENSING),
    Transition(_O.PAID, _E.RUNNING, _O.DISPENSING),
    Transition(_O.PAID, _E.VEND_COMPLETE, _O.DISPENSED),
    Transition(_O.DISPENSING, _E.VEND_COMPLETE, _O.DISPENSED),
    Transition(_O.PAID, _E.REFUND_OPENED, _O.REFUND_PENDING, "fewer units than paid for"),
    Transition(_O.DISPENSING, _E.REFUND_OPENED, _O.REFUND_PENDING, "fewer units than paid for"),
    Transition(_O.REFUND_PENDING, _E.PROCESSED, _O.REFUNDED, "gateway confirms the refund"),
    # Dispense commands: progress never goes back, a final word is final.
    Transition(None, _E.CREATE, _C.PENDING, "payment counted"),
    Transition(_C.PENDING, _E.ACCEPTED, _C.ACCEPTED),
    Transition(_C.PENDING, _E.RUNNING, _C.RUNNING),
    Transition(_C.ACCEPTED, _E.RUNNING, _C.RUNNING),
    *(
        Transition(source, event, target)
        for source in _RUNNING
        for event, target in (
            (_E.SUCCEEDED, _C.SUCCEEDED),
            (_E.FAILED, _C.FAILED),
            (_E.REJECTED, _C.REJECTED),
            (_E.EXPIRED, _C.EXPIRED),
            (_E.UNKNOWN, _C.UNKNOWN),
            (_E.SILENT, _C.UNKNOWN),
        )
    ),
    # Refunds: written pending in the vend's transaction, settled by the gateway.
    Transition(None, _E.CREATE, _R.PENDING),
    Transition(_R.PENDING, _E.PROCESSED, _R.PROCESSED),
    Transition(_R.PENDING, _E.REFUND_FAILED, _R.FAILED, "refused, or attempts spent"),
    Transition(_R.FAILED, _E.PROCESSED, _R.PROCESSED, "the gateway's later word wins"),
    # Locks (vend sessions)
    Transition(None, _E.CREATE, _S.ACTIVE, "the display code taken"),
    Transition(_S.ACTIVE, _E.VEND_FINISHED, _S.ENDED),
    Transition(_S.ACTIVE, _E.UNLOCKED, _S.ENDED),
    Transition(_S.ACTIVE, _E.EXPIRED, _S.EXPIRED, "ran out, no vend in flight"),
)


class IllegalTransition(ValueError):
    """A move the state diagram does not have."""


def _index() -> dict[tuple[type[StrEnum], str | None, Event], Status]:
    index: dict[tuple[type[StrEnum], str | None, Event], Status] = {}
    for t in TRANSITIONS:
        key = (type(t.target), None if t.source is None else str(t.source), t.event)
        if key in index:
            raise ValueError(f"two moves for {t.source} on {t.event}")
        index[key] = t.target
    return index


_MOVES = _index()


def step(kind: type[S], source: str | None, event: Event) -> S:
    """Where a ``kind`` record in ``source`` goes on ``event``; IllegalTransition if nowhere."""
    target = _MOVES.get((kind, source, event))
    if target is None:
        raise IllegalTransition(f"{kind.__name__} {source} has no move on {event}")
    return kind(target)


def allowed(kind: type[StrEnum], source: str | None, event: Event) -> bool:
    return (kind, source, event) in _MOVES


@dataclass(frozen=True)
class Moves:
    """Where one event takes each record of a vend; None where it stays."""

    command: CommandStatus | None = None
    order: OrderStatus | None = None
    session: SessionStatus | None = None
    unpaid: OrderStatus | None = None  # where the lock's unpaid orders go


Wanted = tuple[str | None, Event | None] | None  # (status now, event), or no move asked


def moves(
    *,
    command: Wanted = None,
    order: Wanted = None,
    session: Wanted = None,
    unpaid: Event | None = None,
    strict: bool = True,
) -> Moves:
    """Every move of one event at once. ``strict``: a move the table lacks raises
    IllegalTransition; otherwise that record stays where it is."""

    def one(kind: type[S], wanted: Wanted) -> S | None:
        if wanted is None or wanted[1] is None:
            return None
        if not strict and not allowed(kind, wanted[0], wanted[1]):
            return None
        return step(kind, wanted[0], wanted[1])

    return Moves(
        command=one(CommandStatus, command),
        order=one(OrderStatus, order),
        session=one(SessionStatus, session),
        unpaid=one(OrderStatus, (OrderStatus.CREATED, unpaid)),
    )

"""What an order's refunds add up to: one automatic refund plus any an operator made by hand.

A refund the gateway refused for good returned nothing, so it does not count
towards what was refunded (and the operator may refund that money again).
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.clock import LocalCalendar
from api.lifecycle.decide import PaymentVerdict
from api.lifecycle.states import MANUAL_REFUND, PaymentDisposition, RefundStatus
from schema.models import Order, Refund

DAY_S = 86400
Machines = Collection[str] | None  # some machines' ids; None: every machine
# A payment refunded whole, never to be dispensed (paid late, the wrong amount, or after
# the machine sold out): the shopper is told why. A vend's refund explains itself by what
# came out.
RETURNED = frozenset(
    v.value
    for v in PaymentVerdict
    if v.refund_reason is not None and v.disposition is PaymentDisposition.COUNTED
)


@dataclass(frozen=True)
class RefundTotal:
    amount: int  # pending or processed, in paise
    status: str  # pending while any is pending; processed; failed when all failed
    manual: int  # the part of ``amount`` an operator refunded by hand
    reason: str | None = None  # why a payment was returned whole (one of RETURNED)

    def as_json(self) -> dict[str, object]:
        """The contract's ``{"amount", "status"}``, plus ``manual_amount`` when an operator
        refunded by hand and ``reason`` when the payment was returned whole (so a page can
        say why)."""
        shown: dict[str, object] = {"amount": self.amount, "status": self.status}
        if self.manual:
            shown["manual_amount"] = self.manual
        if self.reason is not None:
            shown["reason"] = self.reason
        return shown


def refunded(refunds: Sequence[Refund]) -> int:
    """Paise refunded or on their way back."""
    return sum(r.amount for r in refunds if r.status != RefundStatus.FAILED)


def total(refunds: Sequence[Refund]) -> RefundTotal | None:
    """The refunds of one payment as the shopper reads them; None when there are none."""
    if not refunds:
        return None
    reason = next((r.reason for r in refunds if r.reason in RETURNED), None)
    live = [r for r in refunds if r.status != RefundStatus.FAILED]
    if not live:
        manual = sum(r.amount for r in refunds if r.reason == MANUAL_REFUND)
        return RefundTotal(sum(r.amount for r in refunds), RefundStatus.FAILED, manual, reason)
    pending = any(r.status == RefundStatus.PENDING for r in live)
    status = RefundStatus.PENDING if pending else RefundStatus.PROCESSED
    manual = sum(r.amount for r in live if r.reason == MANUAL_REFUND)
    return RefundTotal(refunded(live), status, manual, reason)


async def manual_by_machine_day(
    s: AsyncSession, calendar: LocalCalendar, since: int, now: int, machines: Machines = None
) -> dict[tuple[str, int], int]:
    """Paise refunded by operators per (machine, local day of the refund) since ``since``,
    for every machine or only ``machines``.

    Sales are counted at the units that came out, so the automatic refund of
    what did not come out is already left out of them; what operators give back
    on top is taken off the day the refund was made.
    """
    day = calendar.bucket(Refund.created_at, since, now + 1)
    query = (
        select(Order.machine_id, day, func.sum(Refund.amount))
        .join(Order, Order.id == Refund.order_id)
        .where(
            Refund.reason == MANUAL_REFUND,
            Refund.status != RefundStatus.FAILED,
            Refund.created_at >= since,
        )
        .group_by(Order.machine_id, day)
    )
    if machines is not None:
        query = query.where(Order.machine_id.in_(machines))
    rows = (await s.execute(query)).all()
    return {(mid, int(d)): int(amount or 0) for mid, d, amount in rows}

"""An operator's refund of an order, through the same refund machinery as the vend's own.

It changes money, not history: the order keeps its status (a ``dispensed``
order stays ``dispensed``) and its ``refund`` shows the total refunded so far.
Several manual refunds may follow each other, together with the automatic
one never more than was paid, and never while the vend is still running.
Each refund row is written ``pending`` and the periodic refund worker sends it
to the gateway, with the refund's id as the idempotency key.
"""

import logging

from api.errors import (
    InvalidRequest,
    OrderNotFound,
    PaymentRequired,
    RefundExceedsPaid,
    VendInProgress,
)
from api.lifecycle import decide, vend
from api.lifecycle.decide import ManualVerdict
from api.lifecycle.states import PaymentDisposition
from api.money import money
from api.services import audit, vend_load, vend_writer
from api.services.context import Context
from api.services.refund_totals import refunded
from schema.models import Order, Refund

log = logging.getLogger(__name__)


class ManualRefunds:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def refund(
        self, order_id: str, amount: int, *, by: str = "", reason: str | None = None
    ) -> Refund:
        """Refund ``amount`` paise more of the order's payment; ``reason`` (required
        from operators) is kept with the refund (``note``: reports, CSV, the ``refund``
        webhook) and in the audit trail, in one transaction."""
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            order = await s.get(Order, order_id, with_for_update=True)
            if order is None:
                raise OrderNotFound(f"no order {order_id}")
            loaded = await vend_load.by_order(s, order)
            outcome = vend.manual_refund(loaded.vend, amount, reason)
            payment = next(
                (p for p in loaded.rows.payments if p.disposition == PaymentDisposition.COUNTED),
                None,
            )
            if outcome.refusal == ManualVerdict.NOT_PAID:
                raise PaymentRequired("this order was never paid; there is nothing to refund")
            assert payment is not None
            if outcome.refusal == ManualVerdict.VEND_RUNNING:
                raise VendInProgress("the vend is still running; refund after it ends")
            earlier = [r for r in loaded.rows.refunds if r.payment_id == payment.id]
            done = refunded(earlier)
            if outcome.refusal == ManualVerdict.REFUNDED_IN_FULL:
                raise RefundExceedsPaid(
                    f"the whole payment of {money(payment.amount, payment.currency)} "
                    "is already refunded"
                )
            if outcome.refusal == ManualVerdict.OUT_OF_RANGE:
                room = decide.refund_room(payment.amount, done)
                raise (RefundExceedsPaid if amount > room else InvalidRequest)(
                    f"the refund must be from {money(1, payment.currency)} to "
                    f"{money(room, payment.currency)}: "
                    f"{money(payment.amount - room, payment.currency)} of the "
                    f"{money(payment.amount, payment.currency)} paid is already refunded"
                )
            written = await vend_writer.apply(s, loaded.rows, outcome, now)
            refund = written.refunds[0]
            audit.record(
                s,
                by or "?",
                "refund_issued",
                f"order:{order.id}",
                {"refunded": done, "paid": payment.amount},
                {"refunded": done + amount, "refund_id": refund.id, "amount": amount},
                reason,
                machine_id=order.machine_id,
                at=now,
            )
        log.info("order %s: manual refund %s of %d by %s", order_id, refund.id, amount, by or "?")
        return refund

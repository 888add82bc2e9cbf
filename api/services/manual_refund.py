"""An operator's refund of an order, through the same refund machinery as the vend's own.

The refund row is written ``pending`` (the order turns ``refund_pending``) and
the periodic refund worker sends it to the gateway, with the refund's id as
the idempotency key.  A payment is refunded at most once, and never while its
vend is still running.
"""

import logging

from sqlalchemy import select

from api.errors import Conflict, InvalidRequest, OrderNotFound, PaymentRequired, VendInProgress
from api.services.context import Context
from api.services.refunds import open_refund
from schema.models import FINAL_COMMAND_STATES, Command, Order, Payment, Refund

log = logging.getLogger(__name__)


class ManualRefunds:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def refund(self, order_id: str, amount: int | None = None, *, by: str = "") -> Refund:
        """Refund ``amount`` paise of the order's payment (default: what was not dispensed)."""
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            order = await s.get(Order, order_id, with_for_update=True)
            if order is None:
                raise OrderNotFound(f"no order {order_id}")
            payment = await s.scalar(
                select(Payment).where(
                    Payment.order_id == order.id, Payment.disposition == "counted"
                )
            )
            if payment is None:
                raise PaymentRequired("this order was never paid; there is nothing to refund")
            command = await s.scalar(select(Command).where(Command.order_id == order.id))
            if command is not None and command.status not in FINAL_COMMAND_STATES:
                raise VendInProgress("the vend is still running; refund after it ends")
            taken = await s.scalar(select(Refund.id).where(Refund.payment_id == payment.id))
            if taken is not None:
                raise Conflict(f"this payment already has refund {taken}")
            if amount is None:
                amount = (order.quantity - order.dispensed) * order.unit_amount
            if not 1 <= amount <= payment.amount:
                raise InvalidRequest(f"refund must be 1 to {payment.amount} paise")
            refund = await open_refund(s, order, payment, amount, "manual", now)
            assert refund is not None
        log.info("order %s: manual refund %s of %d by %s", order_id, refund.id, amount, by or "?")
        return refund

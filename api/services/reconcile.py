"""Settling what the gateway knows but never told us.

A shopper can pay and close the tab before ``verify-payment`` runs, and a
webhook can be lost.  Every so often the reconciler asks the gateway about
recent unpaid orders and pending refunds, and feeds the answers through the
same idempotent paths as the browser and the webhooks.
"""

import logging

from sqlalchemy import select

from api.errors import GatewayError
from api.lifecycle.states import PAYABLE, UNPAID, RefundStatus, ordered
from api.payments.base import PaymentGateway
from api.services.context import Context
from api.services.orders import Orders
from api.services.refunds import Refunds
from schema.models import Order, Payment, Refund

log = logging.getLogger(__name__)
LOOK_BACK_S = 24 * 3600
# The browser and the webhook usually report a payment within seconds; ask the
# gateway only about orders older than this.
GRACE_S = 60
BATCH = 50


class Reconciler:
    def __init__(
        self, ctx: Context, orders: Orders, refunds: Refunds, gateway: PaymentGateway
    ) -> None:
        self.ctx = ctx
        self.orders = orders
        self.refunds = refunds
        self.gateway = gateway

    async def run_once(self) -> int:
        """Check recent unpaid orders and pending refunds; returns how many changed."""
        return await self._orders() + await self._refunds()

    async def _orders(self) -> int:
        now = self.ctx.clock.now()
        since = now - LOOK_BACK_S
        async with self.ctx.db.begin() as s:
            unpaid = (
                await s.scalars(
                    select(Order.gateway_order_id)
                    .where(
                        Order.status.in_(ordered(UNPAID)),
                        Order.gateway_order_id.is_not(None),
                        Order.gateway == self.gateway.name,
                        Order.created_at >= since,
                        Order.created_at <= now - GRACE_S,
                    )
                    .order_by(Order.created_at.desc())
                    .limit(BATCH)
                )
            ).all()
            known = set(
                (
                    await s.scalars(
                        select(Payment.gateway_payment_id)
                        .join(Order, Order.id == Payment.order_id)
                        .where(Order.created_at >= since)
                    )
                ).all()
            )
        changed = 0
        for gateway_order_id in unpaid:
            assert gateway_order_id is not None
            try:
                payments = await self.gateway.payments_for_order(gateway_order_id)
            except GatewayError as exc:
                log.warning("reconcile %s: %s", gateway_order_id, exc)
                continue
            for payment in payments:
                if payment.status in PAYABLE and payment.id not in known:
                    await self.orders.record_payment(payment, via="reconcile")
                    changed += 1
        return changed

    async def _refunds(self) -> int:
        async with self.ctx.db.begin() as s:
            rows = (
                await s.execute(
                    select(Refund.gateway_refund_id, Payment.gateway_payment_id)
                    .join(Payment, Payment.id == Refund.payment_id)
                    .where(
                        Refund.status == RefundStatus.PENDING,
                        Refund.gateway_refund_id.is_not(None),
                    )
                    .limit(BATCH)
                )
            ).all()
        changed = 0
        for refund_id, payment_id in rows:
            assert refund_id is not None
            try:
                remote = await self.gateway.fetch_refund(payment_id=payment_id, refund_id=refund_id)
            except GatewayError as exc:
                log.warning("reconcile refund %s: %s", refund_id, exc)
                continue
            if await self.refunds.apply_gateway_status(remote.id, remote.status):
                changed += 1
        return changed

"""Refunds: decided in the vend's transaction, sent to the gateway after it.

A refund row is written (``pending``) in the same transaction that decides it,
with its own id as the gateway's idempotency key, so a crash or a retry never
refunds twice and never forgets to refund.

A payment has at most one automatic refund, and only an automatic refund moves
its order to ``refund_pending`` and ``refunded``.  An operator's manual refunds
(``api.services.manual_refund``) change money, not the order's history.
"""

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import GatewayError
from api.ids import new_id
from api.lifecycle import decide
from api.lifecycle.states import MANUAL_REFUND, OrderStatus, RefundStatus
from api.lifecycle.table import Event, allowed, step
from api.payments.base import PaymentGateway
from api.services import webhooks_out
from api.services.context import Context
from schema.models import Order, Payment, Refund

log = logging.getLogger(__name__)


async def open_refund(
    s: AsyncSession, order: Order, payment: Payment, amount: int, reason: str, now: int
) -> Refund | None:
    """Record the automatic refund of ``amount`` of ``payment``; at most one per payment."""
    existing = await s.scalar(
        select(Refund).where(Refund.payment_id == payment.id, Refund.reason != MANUAL_REFUND)
    )
    if existing is not None or amount <= 0:
        return existing
    refund = new_refund(order, payment, amount, reason, now)
    s.add(refund)
    event = {"order_id": order.id, "refund_id": refund.id, "amount": amount, "reason": reason}
    data = {**event, "machine_id": order.machine_id, "manual": False}
    await webhooks_out.emit(s, "refund", data, now)
    if decide.refund_moves_order(reason, payment.disposition):
        order.status = step(OrderStatus, order.status, Event.REFUND_OPENED)
        order.updated_at = now
    await s.flush()
    return refund


def new_refund(order: Order, payment: Payment, amount: int, reason: str, now: int) -> Refund:
    """A pending refund row, its id the gateway's idempotency key."""
    return Refund(
        id=new_id("rfd"),
        order_id=order.id,
        payment_id=payment.id,
        amount=amount,
        status=step(RefundStatus, None, Event.CREATE),
        reason=reason,
        attempts=0,
        created_at=now,
        updated_at=now,
    )


async def settle(s: AsyncSession, refund: Refund, status: str, now: int) -> None:
    """A gateway's final word on a refund; the order ends ``refunded`` when processed."""
    event = decide.refund_event(status)
    if event is None or not allowed(RefundStatus, refund.status, event):
        return  # not a final word, the same word again, or a stale one after processed
    refund.status = step(RefundStatus, refund.status, event)
    refund.updated_at = now
    if refund.reason == MANUAL_REFUND:
        return  # money, not history: the order keeps its status
    payment = await s.get(Payment, refund.payment_id)
    order = await s.get(Order, refund.order_id, with_for_update=True)
    if payment is None or order is None:
        return
    if decide.refund_moves_order(refund.reason, payment.disposition) and allowed(
        OrderStatus, order.status, event
    ):
        order.status = step(OrderStatus, order.status, event)
        order.updated_at = now


class Refunds:
    def __init__(self, ctx: Context, gateway: PaymentGateway) -> None:
        self.ctx = ctx
        self.gateway = gateway

    async def process_pending(self, limit: int = 50) -> int:
        """Send pending refunds to the gateway; returns how many it accepted."""
        async with self.ctx.db.begin() as s:
            rows = (
                await s.execute(
                    select(Refund.id, Refund.amount, Refund.order_id, Payment.gateway_payment_id)
                    .join(Payment, Payment.id == Refund.payment_id)
                    .where(
                        Refund.status == RefundStatus.PENDING, Refund.gateway_refund_id.is_(None)
                    )
                    .order_by(Refund.created_at)
                    .limit(limit)
                )
            ).all()
        sent = 0
        for refund_id, amount, order_id, payment_id in rows:
            try:
                result = await self.gateway.refund(
                    payment_id=payment_id,
                    amount=amount,
                    idempotency_key=refund_id,
                    notes={"order": order_id, "refund": refund_id},
                )
            except GatewayError as exc:
                await self._failed_attempt(refund_id, str(exc))
                continue
            sent += 1
            now = self.ctx.clock.now()
            async with self.ctx.db.begin() as s:
                refund = await s.get(Refund, refund_id, with_for_update=True)
                assert refund is not None
                refund.gateway_refund_id = result.id
                refund.attempts += 1
                refund.updated_at = now
                await settle(s, refund, result.status, now)
        return sent

    async def _failed_attempt(self, refund_id: str, error: str) -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            refund = await s.get(Refund, refund_id, with_for_update=True)
            assert refund is not None
            refund.attempts += 1
            refund.last_error = error[:300]
            refund.updated_at = now
            log.warning("refund %s failed (attempt %d): %s", refund_id, refund.attempts, error)
            if decide.attempts_spent(refund.attempts):
                await settle(s, refund, RefundStatus.FAILED, now)

    async def apply_gateway_status(self, gateway_refund_id: str, status: str) -> bool:
        """A refund webhook or a reconciliation result; True if it matched a refund."""
        if decide.refund_event(status) is None:
            return False
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            refund = await s.scalar(
                select(Refund)
                .where(Refund.gateway_refund_id == gateway_refund_id)
                .with_for_update()
            )
            if refund is None:
                return False
            await settle(s, refund, status, now)
            return True

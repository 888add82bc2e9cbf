"""Gateway webhooks: each event id acted on once, payments checked at the source."""

import logging

from sqlalchemy.exc import IntegrityError

from api.lifecycle.states import PAYABLE
from api.payments.base import PaymentGateway, WebhookEvent
from api.services.context import Context
from api.services.orders import Orders
from api.services.refunds import Refunds
from schema.models import WebhookEvent as SeenEvent

log = logging.getLogger(__name__)
PAYMENT_EVENTS = ("payment.captured", "payment.authorized", "order.paid")
REFUND_EVENTS = {"refund.processed": "processed", "refund.failed": "failed"}


class Webhooks:
    def __init__(
        self, ctx: Context, orders: Orders, refunds: Refunds, gateway: PaymentGateway
    ) -> None:
        self.ctx = ctx
        self.orders = orders
        self.refunds = refunds
        self.gateway = gateway

    async def handle(self, event: WebhookEvent) -> bool:
        """Act on a verified event; False when its id was seen before (a no-op).

        The same event may reach several workers at once: whichever loses a
        race on a unique key finds the event recorded and answers duplicate."""
        if await self._seen(event):
            return False
        try:
            return await self._act(event)
        except IntegrityError:
            if await self._seen(event):
                log.info("webhook %s handled concurrently elsewhere", event.id)
                return False
            raise

    async def _seen(self, event: WebhookEvent) -> bool:
        async with self.ctx.db() as s:
            return await s.get(SeenEvent, event.id[:64]) is not None

    async def _act(self, event: WebhookEvent) -> bool:
        # Acting is idempotent on its own (payment ids, refund ids), so the
        # event id is recorded after: a failure here lets the gateway retry.
        if event.event in PAYMENT_EVENTS and event.payment_id:
            payment = await self.gateway.fetch_payment(event.payment_id)
            if payment.status in PAYABLE and payment.order_id:
                await self.orders.record_payment(payment, via="webhook")
        elif event.event in REFUND_EVENTS and event.refund_id:
            await self.refunds.apply_gateway_status(event.refund_id, REFUND_EVENTS[event.event])
        else:
            log.info("webhook %s (%s) needs no action", event.id, event.event)
        try:
            async with self.ctx.db.begin() as s:
                s.add(
                    SeenEvent(
                        id=event.id[:64], event=event.event[:64], received_at=self.ctx.clock.now()
                    )
                )
        except IntegrityError:
            return False
        return True

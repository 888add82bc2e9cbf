"""Orders and payments: price from the server, payment counted once, then dispatch.

A payment counts when it is verified, by the browser's ``verify-payment`` or a
signed webhook, whichever comes first; the same payment id is a no-op the
second time.  A payment for an order whose lock has ended, of the wrong
amount, or for an order already paid is refunded in full and never dispensed.
"""

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import (
    GatewayError,
    InsufficientStock,
    InvalidRequest,
    InvalidSignature,
    NotLockOwner,
    OrderNotFound,
    PaymentRequired,
    SessionExpired,
    SmartVendError,
    VendInProgress,
)
from api.infra.changes_from_commits import order_channel, touch
from api.lifecycle import vend
from api.lifecycle.decide import PaymentVerdict
from api.lifecycle.snapshot import Incoming
from api.lifecycle.states import PAYABLE, PaymentDisposition
from api.payments.base import GatewayPayment, PaymentGateway
from api.services import (
    cart,
    planogram,
    refund_totals,
    vend_lines,
    vend_load,
    vend_rows,
    vend_writer,
)
from api.services.context import Context
from schema.models import Command, Order, Payment, Refund, VendSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreatedOrder:
    order_id: str
    gateway_order_id: str
    amount: int
    currency: str
    key_id: str
    gateway: str


class Orders:
    def __init__(self, ctx: Context, gateway: PaymentGateway) -> None:
        self.ctx = ctx
        self.gateway = gateway

    async def create(
        self,
        session_id: str,
        client_id: str,
        quantity: int | None,
        items: list[dict[str, Any]] | None = None,
    ) -> CreatedOrder:
        """An order of ``items`` (slot, quantity), or of ``quantity`` on a one-slot machine."""
        if quantity is not None and not 1 <= quantity <= self.ctx.policy.max_quantity:
            raise InvalidRequest(f"quantity must be 1 to {self.ctx.policy.max_quantity}")
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            session = await s.get(VendSession, session_id, with_for_update=True)
            if session is None or session.client_id != client_id:
                raise NotLockOwner("this session is not yours")
            loaded = await vend_load.by_session(s, session)
            slots = await planogram.rows(s, session.machine_id, lock=True)
            if not slots:  # pragma: no cover - every machine has a slot since 0005
                raise InsufficientStock("this machine has nothing on sale")
            wrong: SmartVendError | None = None
            try:  # what was asked for, priced; said only once the lock is known to hold
                basket = cart.price(
                    cart.items_of(items, quantity, slots), slots, self.ctx.policy.max_quantity
                )
            except SmartVendError as exc:
                basket, wrong = cart.Cart(()), exc
            outcome = vend.order_requested(
                loaded.vend, client_id, cart.lines_of(basket), self.ctx.policy, now
            )
            if outcome.refusal == vend.SESSION_EXPIRED:
                raise SessionExpired("your session has ended; enter the code again")
            if wrong is not None:
                raise wrong
            if outcome.refusal == vend.NOT_ENOUGH_STOCK:
                assert loaded.rows.machine is not None
                raise InsufficientStock(f"only {loaded.rows.machine.stock} left in this machine")
            if outcome.refusal == vend.VEND_IN_FLIGHT:
                raise VendInProgress("your earlier order is being dispensed")
            written = await vend_writer.apply(
                s, loaded.rows, outcome, now, policy=self.ctx.policy, gateway=self.gateway.name
            )
            order = written.order
            assert order is not None
        try:
            remote = await self.gateway.create_order(
                amount=order.amount,
                currency=order.currency,
                receipt=order.id,
                notes={"machine": order.machine_id, "session": order.session_id},
            )
        except GatewayError:
            async with self.ctx.db.begin() as s:
                refused = await s.get(Order, order.id, with_for_update=True)
                assert refused is not None
                loaded = vend_load.order_only(refused)
                outcome = vend.gateway_refused(loaded.vend)
                await vend_writer.apply(s, loaded.rows, outcome, now, policy=self.ctx.policy)
            raise
        await self._set(order.id, gateway_order_id=remote.id)
        return CreatedOrder(
            order.id,
            remote.id,
            order.amount,
            order.currency,
            self.gateway.key_id,
            self.gateway.name,
        )

    async def _set(self, order_id: str, **values: Any) -> None:
        async with self.ctx.db.begin() as s:
            await s.execute(update(Order).where(Order.id == order_id).values(**values))
            touch(s, order_channel(order_id))

    async def verify(self, gateway_order_id: str, payment_id: str, signature: str) -> Order:
        """The browser's proof of payment, checked against the gateway itself."""
        if not self.gateway.verify_payment_signature(
            order_id=gateway_order_id, payment_id=payment_id, signature=signature
        ):
            raise InvalidSignature("the payment signature does not match")
        payment = await self.gateway.fetch_payment(payment_id)
        if payment.order_id != gateway_order_id:
            raise InvalidSignature("the payment belongs to another order")
        if payment.status not in PAYABLE:
            raise PaymentRequired(f"the payment is {payment.status}, not captured")
        return await self.record_payment(payment, via="verify")

    async def record_payment(self, payment: GatewayPayment, *, via: str) -> Order:
        """Count a verified payment once; dispatch, or refund it in full."""
        now = self.ctx.clock.now()
        try:
            async with self.ctx.db.begin() as s:
                waiting = await vend_rows.for_payment(s, payment.order_id, payment.id)
                if waiting is None:
                    raise OrderNotFound("no order for this payment")
                if waiting.known:
                    return waiting.order
                paid = Incoming(payment.id, payment.amount, payment.currency, via)
                if waiting.waiting:
                    outcome = vend.payment_verified(waiting.vend, paid, self.ctx.policy, now)
                    if vend_writer.dispatches(outcome):
                        await vend_writer.dispatch_paid(s, waiting.rows, outcome, now)
                        return waiting.order
                # anything else the ORM way, on the rows just locked
                loaded = await vend_load.for_payment(s, payment.order_id)
                assert loaded is not None
                await self._count(s, loaded, paid, now)
                order = loaded.rows.order
                assert order is not None
                return order
        except IntegrityError:
            # The same payment counted concurrently by the webhook and the browser.
            return await self.get_order(order_id=None, gateway_order_id=payment.order_id)

    async def _count(
        self, s: AsyncSession, loaded: vend_load.Loaded, paid: Incoming, now: int
    ) -> None:
        order = loaded.rows.order
        assert order is not None
        outcome = vend.payment_verified(loaded.vend, paid, self.ctx.policy, now)
        if any(r.reason == PaymentVerdict.WRONG_AMOUNT for r in outcome.refunds):
            log.warning(
                "order %s paid %d %s, expected %d",
                order.id,
                paid.amount,
                paid.currency,
                order.amount,
            )
        await vend_writer.apply(s, loaded.rows, outcome, now, policy=self.ctx.policy)

    async def trigger(self, machine_id: str, order_id: str, client_id: str) -> Order:
        """Older clients ask to dispense; only a counted payment has a command."""
        async with self.ctx.db.begin() as s:
            order = await s.get(Order, order_id)
            if order is None or order.machine_id != machine_id or order.client_id != client_id:
                raise PaymentRequired("no paid order of yours on this machine")
            command = await s.scalar(select(Command.id).where(Command.order_id == order.id))
            if command is None:
                raise PaymentRequired("this order is not paid")
            return order

    async def get_order(self, order_id: str | None, gateway_order_id: str | None = None) -> Order:
        async with self.ctx.db.begin() as s:
            if order_id is not None:
                order = await s.get(Order, order_id)
            else:
                order = await s.scalar(
                    select(Order).where(Order.gateway_order_id == gateway_order_id)
                )
            if order is None:
                raise OrderNotFound("no such order")
            return order

    async def view(self, order_id: str) -> dict[str, Any]:
        """The order as the shopper sees it, with the total refunded so far if any."""
        async with self.ctx.db() as s:
            order, lines = await vend_lines.order_with_lines(s, order_id)
            if order is None:
                raise OrderNotFound("no such order")
            refunds = (
                await s.scalars(
                    select(Refund)
                    .join(Payment, Payment.id == Refund.payment_id)
                    .where(
                        Refund.order_id == order.id,
                        Payment.disposition == PaymentDisposition.COUNTED,
                    )
                )
            ).all()
        refund = refund_totals.total(refunds)
        return {
            "order_id": order.id,
            "machine_id": order.machine_id,
            "status": order.status,
            "quantity": order.quantity,
            "dispensed": order.dispensed,
            "amount": order.amount,
            "currency": order.currency,
            "refund": None if refund is None else refund.as_json(),
            "lines": vend_lines.as_json(lines),
        }

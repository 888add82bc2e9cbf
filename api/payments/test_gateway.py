"""The built-in gateway for running without Razorpay keys.

Orders, payments and refunds live in memory and, given ``records``, in the
database too, so refunds still work after a restart.  It signs exactly like Razorpay,
so ``/verify-payment`` and webhooks go through the same checks as in
production, and it enforces the same rules that Razorpay enforces on what we
send (minimum amount, receipt length, refunds within what was captured).
Refunds are processed at once.  ``complete_payment`` plays the shopper's part
of the checkout.
"""

import json
import secrets
import string
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from api.errors import GatewayError, InvalidRequest, InvalidSignature
from api.payments import signatures
from api.payments.base import GatewayOrder, GatewayPayment, GatewayRefund, WebhookEvent
from api.payments.test_gateway_records import GatewayRecords
from api.payments.webhooks import SignedWebhook, parse_event

MIN_AMOUNT = 100  # Razorpay refuses orders below 100 of the smallest unit
MAX_RECEIPT = 40
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """An id shaped like Razorpay's: a prefix and 14 base62 characters."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(14))


@dataclass
class _Payment:
    payment: GatewayPayment
    refunded: int = 0
    refunds: list[str] = field(default_factory=list)


class TestGateway:
    """``PaymentGateway`` kept in memory, signing with ``secret``."""

    __test__ = False
    name: str = "test"
    key_id: str = "rzp_test_smartvend"

    def __init__(self, secret: str, records: GatewayRecords | None = None) -> None:
        if not secret:
            raise ValueError("TestGateway needs a non-empty secret")
        self._secret = secret
        self._records = records
        self._orders: dict[str, GatewayOrder] = {}
        self._payments: dict[str, _Payment] = {}
        self._refunds: dict[str, GatewayRefund] = {}
        self._idempotency: dict[str, str] = {}

    # -- the port ---------------------------------------------------------

    async def create_order(
        self, *, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> GatewayOrder:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < MIN_AMOUNT:
            raise GatewayError(f"order amount must be an integer of at least {MIN_AMOUNT}")
        if len(receipt) > MAX_RECEIPT:
            raise GatewayError(f"receipt longer than {MAX_RECEIPT} characters")
        order = GatewayOrder(
            id=new_id("order_"), amount=amount, currency=currency, receipt=receipt, status="created"
        )
        self._orders[order.id] = order
        await self._save_order(order)
        return order

    def verify_payment_signature(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        return signatures.check_payment(self._secret, order_id, payment_id, signature)

    async def fetch_payment(self, payment_id: str) -> GatewayPayment:
        return (await self._known_payment(payment_id)).payment

    async def payments_for_order(self, order_id: str) -> list[GatewayPayment]:
        if await self._known_order(order_id) is None:
            raise GatewayError(f"unknown order {order_id}")
        if self._records is not None:
            for data in await self._records.children("payment", order_id):
                if data["payment"]["id"] not in self._payments:
                    self._payments[data["payment"]["id"]] = _payment_of(data)
        return [p.payment for p in self._payments.values() if p.payment.order_id == order_id]

    async def refund(
        self, *, payment_id: str, amount: int, idempotency_key: str, notes: dict[str, str]
    ) -> GatewayRefund:
        record = await self._known_payment(payment_id)
        known = self._idempotency.get(idempotency_key)
        if known is None and self._records is not None:
            stored = await self._records.get("key", idempotency_key)
            known = None if stored is None else str(stored["refund_id"])
        if known is not None:
            refund = await self._known_refund(known)
            if refund is None:
                raise GatewayError(f"unknown refund {known}")
            if refund.payment_id != payment_id:
                raise GatewayError("idempotency key already used for another payment")
            return refund
        if record.payment.status not in ("captured", "refunded"):
            raise GatewayError("the payment has not been captured")
        if amount <= 0 or amount > record.payment.amount - record.refunded:
            raise GatewayError("refund amount is greater than the amount left to refund")
        refund = GatewayRefund(
            id=new_id("rfnd_"), payment_id=payment_id, amount=amount, status="processed"
        )
        self._refunds[refund.id] = refund
        self._idempotency[idempotency_key] = refund.id
        record.refunded += amount
        record.refunds.append(refund.id)
        if record.refunded == record.payment.amount:
            record.payment = replace(record.payment, status="refunded")
        if self._records is not None:
            await self._records.put("refund", refund.id, payment_id, asdict(refund))
            await self._save_payment(record)
            await self._records.put("key", idempotency_key, None, {"refund_id": refund.id})
        return refund

    async def fetch_refund(self, *, payment_id: str, refund_id: str) -> GatewayRefund:
        refund = await self._known_refund(refund_id)
        if refund is None or refund.payment_id != payment_id:
            raise GatewayError(f"unknown refund {refund_id} of payment {payment_id}")
        return refund

    def parse_webhook(
        self, body: bytes, signature: str, *, event_id: str | None = None
    ) -> WebhookEvent:
        if not signatures.check(self._secret, body, signature):
            raise InvalidSignature("webhook signature does not match")
        return parse_event(body, event_id=event_id)

    # -- the shopper's side -----------------------------------------------

    async def checkout(self, order_id: str, *, succeed: bool = True) -> dict[str, str]:
        """``complete_payment``, kept in the records (what the checkout page calls)."""
        await self._known_order(order_id)
        proof = self.complete_payment(order_id, succeed=succeed)
        await self._save_order(self._orders[order_id])
        await self._save_payment(self._payments[proof["razorpay_payment_id"]])
        return proof

    def complete_payment(self, order_id: str, *, succeed: bool = True) -> dict[str, str]:
        """Pay (or fail to pay) ``order_id`` as the checkout would.

        Success returns what Razorpay's checkout hands the browser; failure
        records a failed payment and returns a dict with an ``error`` key.
        """
        order = self._orders.get(order_id)
        if order is None:
            raise InvalidRequest(f"unknown order {order_id}")
        if order.status == "paid":
            raise InvalidRequest(f"order {order_id} is already paid")
        status = "captured" if succeed else "failed"
        payment = GatewayPayment(
            id=new_id("pay_"),
            order_id=order_id,
            amount=order.amount,
            currency=order.currency,
            status=status,
        )
        self._payments[payment.id] = _Payment(payment)
        self._orders[order_id] = replace(order, status="paid" if succeed else "attempted")
        if not succeed:
            return {
                "error": "payment_failed",
                "razorpay_order_id": order_id,
                "razorpay_payment_id": payment.id,
            }
        return {
            "razorpay_order_id": order_id,
            "razorpay_payment_id": payment.id,
            "razorpay_signature": signatures.payment_signature(self._secret, order_id, payment.id),
        }

    def webhook(
        self, event: str, *, payment_id: str | None = None, refund_id: str | None = None
    ) -> SignedWebhook:
        """A signed, Razorpay-shaped webhook about a known payment or refund."""
        payload: dict[str, object] = {}
        if refund_id is not None:
            refund = self._refunds.get(refund_id)
            if refund is None:
                raise InvalidRequest(f"unknown refund {refund_id}")
            payload["refund"] = {"entity": {"entity": "refund", **asdict(refund)}}
            payment_id = payment_id or refund.payment_id
        if payment_id is not None:
            payment = self._payment(payment_id).payment
            payload["payment"] = {"entity": {"entity": "payment", **asdict(payment)}}
        doc = {
            "entity": "event",
            "account_id": "acc_smartvendtest",
            "event": event,
            "contains": list(payload),
            "payload": payload,
            "created_at": int(time.time()),
        }
        body = json.dumps(doc, separators=(",", ":")).encode()
        return SignedWebhook(
            body=body, signature=signatures.sign(self._secret, body), event_id=new_id("evt_")
        )

    # -- records ------------------------------------------------------------

    async def _save_order(self, order: GatewayOrder) -> None:
        if self._records is not None:
            await self._records.put("order", order.id, None, asdict(order))

    async def _save_payment(self, record: _Payment) -> None:
        if self._records is not None:
            data = {"payment": asdict(record.payment), "refunded": record.refunded}
            data["refunds"] = list(record.refunds)
            await self._records.put("payment", record.payment.id, record.payment.order_id, data)

    async def _known_order(self, order_id: str) -> GatewayOrder | None:
        order = self._orders.get(order_id)
        if order is None and self._records is not None:
            stored = await self._records.get("order", order_id)
            if stored is not None:
                order = self._orders[order_id] = GatewayOrder(**stored)
        return order

    async def _known_refund(self, refund_id: str) -> GatewayRefund | None:
        refund = self._refunds.get(refund_id)
        if refund is None and self._records is not None:
            stored = await self._records.get("refund", refund_id)
            if stored is not None:
                refund = self._refunds[refund_id] = GatewayRefund(**stored)
        return refund

    async def _known_payment(self, payment_id: str) -> _Payment:
        if payment_id not in self._payments and self._records is not None:
            stored = await self._records.get("payment", payment_id)
            if stored is not None:
                self._payments[payment_id] = _payment_of(stored)
        return self._payment(payment_id)

    def _payment(self, payment_id: str) -> _Payment:
        record = self._payments.get(payment_id)
        if record is None:
            raise GatewayError(f"unknown payment {payment_id}")
        return record


def _payment_of(data: dict[str, Any]) -> _Payment:
    return _Payment(
        payment=GatewayPayment(**data["payment"]),
        refunded=int(data["refunded"]),
        refunds=list(data["refunds"]),
    )

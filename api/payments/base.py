"""The payment gateway port: what the order service needs from a gateway.

Two adapters implement it: ``RazorpayGateway`` (the real SDK) and
``TestGateway`` (in memory, used when no Razorpay keys are configured).  Money
is an integer in paise.  Gateway and network failures surface as
``api.errors.GatewayError``; nothing from the SDK or ``requests`` leaks out.
"""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class GatewayOrder:
    id: str
    amount: int
    currency: str
    receipt: str
    status: str  # created | attempted | paid


@dataclass(frozen=True)
class GatewayPayment:
    id: str
    order_id: str
    amount: int
    currency: str
    status: str  # created | authorized | captured | refunded | failed


@dataclass(frozen=True)
class GatewayRefund:
    id: str
    payment_id: str
    amount: int
    status: str  # pending | processed | failed


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook, reduced to what the order service acts on.

    ``amount`` and ``status`` describe the event's main entity: the refund for
    ``refund.*`` events, the payment otherwise.
    """

    id: str
    event: str
    order_id: str | None
    payment_id: str | None
    refund_id: str | None
    amount: int | None
    status: str | None


class PaymentGateway(Protocol):
    name: str  # "razorpay" or "test"
    key_id: str  # public key id shown to the browser

    async def create_order(
        self, *, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> GatewayOrder: ...

    def verify_payment_signature(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        """True only for the gateway's signature of ``order_id|payment_id``; never raises."""
        ...

    async def fetch_payment(self, payment_id: str) -> GatewayPayment: ...

    async def payments_for_order(self, order_id: str) -> list[GatewayPayment]: ...

    async def refund(
        self, *, payment_id: str, amount: int, idempotency_key: str, notes: dict[str, str]
    ) -> GatewayRefund:
        """Refund ``amount``; the same ``idempotency_key`` never refunds twice."""
        ...

    async def fetch_refund(self, *, payment_id: str, refund_id: str) -> GatewayRefund: ...

    def parse_webhook(
        self, body: bytes, signature: str, *, event_id: str | None = None
    ) -> WebhookEvent:
        """Verify and decode a webhook's raw body.

        ``event_id`` is the ``X-Razorpay-Event-Id`` header when the caller has
        it; without it the id is ``"{event}:{entity id}"``, which is stable
        across redeliveries too.  Raises ``InvalidSignature`` on a bad or
        missing signature, ``InvalidRequest`` on a body that is not a webhook.
        """
        ...

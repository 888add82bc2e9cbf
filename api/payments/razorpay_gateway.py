"""The Razorpay adapter: the official SDK, run off the event loop.

The SDK is synchronous (``requests``), so every call goes through
``asyncio.to_thread`` with a per-request ``timeout`` (the SDK forwards extra
keyword arguments of a resource call to ``requests``) and an overall deadline
for the awaiting coroutine.  Headers travel the same way, which is how a
refund carries ``X-Refund-Idempotency``.  The SDK's own retry stays off:
callers decide when to try again.  Everything the SDK or ``requests`` raises,
and any answer of an unexpected shape, becomes ``GatewayError`` here.

``requests`` is imported from its submodules: the MicroPython stubs installed
for the firmware shadow the package's top-level types.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import razorpay
import razorpay.errors
from requests.exceptions import RequestException
from requests.sessions import Session

from api.errors import ConfigurationError, GatewayError, InvalidSignature
from api.observability import metrics
from api.payments import signatures
from api.payments.base import GatewayOrder, GatewayPayment, GatewayRefund, WebhookEvent
from api.payments.webhooks import parse_event

_SDK_ERRORS = (
    RequestException,
    razorpay.errors.BadRequestError,
    razorpay.errors.GatewayError,
    razorpay.errors.ServerError,
    ValueError,  # a body that is not JSON
)


def _field(doc: Any, key: str, kind: type) -> Any:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise GatewayError(f"razorpay answered without a valid {key!r}")
    return value


def _order(doc: Any) -> GatewayOrder:
    receipt = doc.get("receipt") if isinstance(doc, dict) else None
    return GatewayOrder(
        id=_field(doc, "id", str),
        amount=_field(doc, "amount", int),
        currency=_field(doc, "currency", str),
        receipt=receipt if isinstance(receipt, str) else "",
        status=_field(doc, "status", str),
    )


def _payment(doc: Any) -> GatewayPayment:
    order_id = doc.get("order_id") if isinstance(doc, dict) else None
    return GatewayPayment(
        id=_field(doc, "id", str),
        order_id=order_id if isinstance(order_id, str) else "",
        amount=_field(doc, "amount", int),
        currency=_field(doc, "currency", str),
        status=_field(doc, "status", str),
    )


def _refund(doc: Any) -> GatewayRefund:
    return GatewayRefund(
        id=_field(doc, "id", str),
        payment_id=_field(doc, "payment_id", str),
        amount=_field(doc, "amount", int),
        status=_field(doc, "status", str),
    )


class RazorpayGateway:
    """``PaymentGateway`` over the Razorpay API (or a compatible server at ``base_url``)."""

    name: str = "razorpay"

    def __init__(
        self,
        key_id: str,
        key_secret: str,
        webhook_secret: str | None,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not key_id or not key_secret:
            raise ConfigurationError("Razorpay needs both a key id and a key secret")
        if base_url is not None and (
            not base_url.startswith(("http://", "https://")) or base_url.rstrip("/").endswith("/v1")
        ):
            raise ConfigurationError(
                f"Razorpay base URL {base_url!r} must be http(s) and must not end in /v1"
            )
        self.key_id = key_id
        self._key_secret = key_secret
        self._webhook_secret = webhook_secret
        self._timeout = timeout
        options: dict[str, Any] = {}
        if base_url is not None:
            options["base_url"] = base_url.rstrip("/")
        self._client: Any = razorpay.Client(session=Session(), auth=(key_id, key_secret), **options)

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout + 1.0):
                with metrics.GATEWAY_SECONDS.labels(what).time():
                    return await asyncio.to_thread(fn, *args, timeout=self._timeout, **kwargs)
        except TimeoutError as exc:
            raise GatewayError(f"razorpay {what} timed out") from exc
        except _SDK_ERRORS as exc:
            raise GatewayError(f"razorpay {what} failed: {exc}") from exc

    async def create_order(
        self, *, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> GatewayOrder:
        data = {
            "amount": amount,
            "currency": currency,
            "receipt": receipt,
            "notes": dict(notes),
            "payment_capture": 1,
        }
        return _order(await self._call("create order", self._client.order.create, data))

    def verify_payment_signature(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        return signatures.check_payment(self._key_secret, order_id, payment_id, signature)

    async def fetch_payment(self, payment_id: str) -> GatewayPayment:
        return _payment(await self._call("fetch payment", self._client.payment.fetch, payment_id))

    async def payments_for_order(self, order_id: str) -> list[GatewayPayment]:
        doc = await self._call("list payments", self._client.order.payments, order_id)
        items = _field(doc, "items", list)
        return [_payment(item) for item in items]

    async def refund(
        self, *, payment_id: str, amount: int, idempotency_key: str, notes: dict[str, str]
    ) -> GatewayRefund:
        data = {"amount": amount, "speed": "normal", "notes": dict(notes)}
        headers = {"X-Refund-Idempotency": idempotency_key}
        doc = await self._call(
            "refund", self._client.payment.refund, payment_id, data, headers=headers
        )
        return _refund(doc)

    async def fetch_refund(self, *, payment_id: str, refund_id: str) -> GatewayRefund:
        fetch = self._client.payment.fetch_refund_id
        return _refund(await self._call("fetch refund", fetch, payment_id, refund_id))

    def parse_webhook(
        self, body: bytes, signature: str, *, event_id: str | None = None
    ) -> WebhookEvent:
        secret = self._webhook_secret or ""
        if not signatures.check(secret, body, signature):
            raise InvalidSignature("webhook signature does not match")
        return parse_event(body, event_id=event_id)

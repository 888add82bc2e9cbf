"""A Razorpay-compatible HTTP server for tests, plus a control API.

It speaks the part of Razorpay's API the SDK uses for SmartVend (orders,
payments, refunds under ``/v1``), with Basic auth and Razorpay's error shape.
Tests drive the shopper's side in Python (``pay``, ``fail``), build signed
webhooks (``webhook``) and inject trouble (``fail_next``, ``stall_next``,
``refunds_pending``).

    async with razorpay_fake() as fake:
        gateway = RazorpayGateway(fake.key_id, fake.key_secret, fake.webhook_secret,
                                  base_url=fake.base_url)
"""

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.payments.webhooks import SignedWebhook
from tests.fakes import razorpay_entities as entities
from tests.fakes.razorpay_entities import Entity, hmac_hex, new_id
from tests.support.uvicorn_server import serve


class _Problem(Exception):
    def __init__(self, status: int, description: str, code: str = "BAD_REQUEST_ERROR") -> None:
        super().__init__(description)
        self.status, self.description, self.code = status, description, code


def _error(status: int, description: str, code: str = "BAD_REQUEST_ERROR") -> JSONResponse:
    return JSONResponse({"error": {"code": code, "description": description}}, status)


@dataclass(frozen=True)
class Call:
    """One request the fake received (header names lower-case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[dict[str, str], Any, dict[str, str]], Entity]


class RazorpayFake:
    def __init__(self, key_id: str, key_secret: str, webhook_secret: str) -> None:
        self.key_id, self.key_secret, self.webhook_secret = key_id, key_secret, webhook_secret
        self.base_url = ""
        self.orders: dict[str, Entity] = {}
        self.payments: dict[str, Entity] = {}
        self._refunds: dict[str, Entity] = {}
        self._capture: dict[str, bool] = {}
        self._idempotency: dict[str, str] = {}
        self.calls: list[Call] = []
        self.refunds_pending = False  # new refunds stay "pending" until settled
        self._failures: list[tuple[int, bytes | None]] = []
        self._stalls = 0
        self._release = asyncio.Event()
        route = self._route
        self.app = Starlette(
            routes=[
                route("/v1/orders", self._create_order, "POST"),
                route("/v1/orders/{oid}", self._get_order, "GET"),
                route("/v1/orders/{oid}/payments", self._order_payments, "GET"),
                route("/v1/payments/{pid}", self._get_payment, "GET"),
                route("/v1/payments/{pid}/refund", self._create_refund, "POST"),
                route("/v1/payments/{pid}/refunds/{rid}", self._get_refund, "GET"),
            ]
        )

    # -- control API --------------------------------------------------------

    @property
    def refunds(self) -> list[Entity]:
        """Every refund created, oldest first."""
        return list(self._refunds.values())

    def fail_next(self, n: int = 1, *, status: int = 500, body: bytes | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` (Razorpay's JSON error, or ``body``)."""
        self._failures.extend([(status, body)] * n)

    def stall_next(self, n: int = 1) -> None:
        """Hold the next ``n`` requests until ``release()`` (or the server stops)."""
        self._stalls += n

    def release(self) -> None:
        """Let every stalled request go on; later stalls wait for the next release."""
        self._release.set()
        self._release = asyncio.Event()

    def pay(
        self, order_id: str, *, amount: int | None = None, method: str = "upi"
    ) -> tuple[str, str]:
        """The shopper pays: returns (payment_id, checkout signature)."""
        order = self.orders[order_id]
        captured = self._capture[order_id]
        status = "captured" if captured else "authorized"
        paid = order["amount"] if amount is None else amount
        payment = self._add_payment(order, paid, method, status)
        order["attempts"] += 1
        if captured:
            order["status"] = "paid"
            order["amount_paid"] += payment["amount"]
            order["amount_due"] = max(0, order["amount"] - order["amount_paid"])
        else:
            order["status"] = "attempted"
        signature = hmac_hex(self.key_secret, f"{order_id}|{payment['id']}".encode())
        return payment["id"], signature

    def fail(self, order_id: str, *, method: str = "upi") -> str:
        """The shopper's payment fails: returns the failed payment's id."""
        order = self.orders[order_id]
        payment = self._add_payment(order, order["amount"], method, "failed")
        order["attempts"] += 1
        if order["status"] == "created":
            order["status"] = "attempted"
        return str(payment["id"])

    def settle_refund(self, refund_id: str, *, status: str = "processed") -> None:
        """Finish a pending refund as ``processed`` or ``failed``."""
        refund = self._refunds[refund_id]
        assert refund["status"] == "pending", refund
        refund["status"] = status
        if status == "failed":
            payment = self.payments[refund["payment_id"]]
            payment["amount_refunded"] -= refund["amount"]
            entities.mark_refunded(payment)

    def settle_refunds(self, *, status: str = "processed") -> list[str]:
        pending = [r["id"] for r in self._refunds.values() if r["status"] == "pending"]
        for refund_id in pending:
            self.settle_refund(refund_id, status=status)
        return pending

    def webhook(
        self,
        event: str,
        *,
        payment_id: str | None = None,
        order_id: str | None = None,
        refund_id: str | None = None,
        event_id: str | None = None,
        secret: str | None = None,
    ) -> SignedWebhook:
        """A Razorpay-shaped webhook about known entities, signed with the webhook secret."""
        payload: dict[str, Entity] = {}
        if refund_id is not None:
            payload["refund"] = self._refunds[refund_id]
            payment_id = payment_id or payload["refund"]["payment_id"]
        if payment_id is not None:
            payload["payment"] = self.payments[payment_id]
            order_id = order_id or payload["payment"]["order_id"]
        if event.startswith("order.") and order_id is not None:
            payload["order"] = self.orders[order_id]
        body = entities.webhook_body(event, payload)
        signature = hmac_hex(secret or self.webhook_secret, body)
        return SignedWebhook(body=body, signature=signature, event_id=event_id or new_id(""))

    # -- HTTP ---------------------------------------------------------------

    def _route(self, path: str, handler: Handler, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.calls.append(Call(request.method, request.url.path, headers, body))
            if self._stalls:
                self._stalls -= 1
                released = self._release
                await released.wait()
            if self._failures:
                status, raw = self._failures.pop(0)
                if raw is not None:
                    return Response(raw, status, media_type="text/html")
                return _error(status, "The server encountered an error.", "SERVER_ERROR")
            if not self._authorized(headers.get("authorization", "")):
                return _error(401, "The api key provided is invalid")
            try:
                data = json.loads(body) if body else {}
            except ValueError:
                return _error(400, "The request body is not valid JSON")
            try:
                return JSONResponse(handler(dict(request.path_params), data, headers))
            except _Problem as problem:
                return _error(problem.status, problem.description, problem.code)

        return Route(path, endpoint, methods=[method])

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded.encode(), f"{self.key_id}:{self.key_secret}".encode())

    def _create_order(self, _: dict[str, str], data: Any, __: dict[str, str]) -> Entity:
        if not isinstance(data, dict):
            raise _Problem(400, "The request body must be an object")
        amount = data.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise _Problem(400, "The amount must be an integer.")
        if amount < 100:
            raise _Problem(400, "Order amount less than minimum amount allowed")
        currency = data.get("currency")
        if not isinstance(currency, str) or len(currency) != 3:
            raise _Problem(400, "The currency must be 3 characters.")
        receipt = data.get("receipt")
        if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
            raise _Problem(400, "The receipt may not be greater than 40 characters.")
        order = entities.order(amount, currency, receipt, data.get("notes"))
        self.orders[order["id"]] = order
        self._capture[order["id"]] = bool(data.get("payment_capture"))
        return order

    def _get_order(self, params: dict[str, str], _: Any, __: dict[str, str]) -> Entity:
        return self._find(self.orders, params["oid"])

    def _order_payments(self, params: dict[str, str], _: Any, __: dict[str, str]) -> Entity:
        self._find(self.orders, params["oid"])
        items = [p for p in self.payments.values() if p["order_id"] == params["oid"]]
        return {"entity": "collection", "count": len(items), "items": items}

    def _get_payment(self, params: dict[str, str], _: Any, __: dict[str, str]) -> Entity:
        return self._find(self.payments, params["pid"])

    def _create_refund(self, params: dict[str, str], data: Any, headers: dict[str, str]) -> Entity:
        payment = self._find(self.payments, params["pid"])
        key = headers.get("x-refund-idempotency")
        if key is not None and key in self._idempotency:
            existing = self._refunds[self._idempotency[key]]
            if existing["payment_id"] != payment["id"]:
                raise _Problem(400, "The idempotency key was used for another payment")
            return existing
        if payment["status"] not in ("captured", "refunded"):
            raise _Problem(400, "The payment has not been captured")
        left = payment["amount"] - payment["amount_refunded"]
        amount = data.get("amount", left) if isinstance(data, dict) else None
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise _Problem(400, "The amount must be a positive integer.")
        if amount > left:
            raise _Problem(400, "The refund amount provided is greater than amount captured")
        status = "pending" if self.refunds_pending else "processed"
        refund = entities.refund(payment, amount, data, status)
        self._refunds[refund["id"]] = refund
        if key is not None:
            self._idempotency[key] = refund["id"]
        payment["amount_refunded"] += amount
        entities.mark_refunded(payment)
        return refund

    def _get_refund(self, params: dict[str, str], _: Any, __: dict[str, str]) -> Entity:
        refund = self._find(self._refunds, params["rid"])
        if refund["payment_id"] != params["pid"]:
            raise _Problem(400, "The id provided does not exist")
        return refund

    # -- entities -----------------------------------------------------------

    @staticmethod
    def _find(table: dict[str, Entity], key: str) -> Entity:
        if key not in table:
            raise _Problem(400, "The id provided does not exist")
        return table[key]

    def _add_payment(self, order: Entity, amount: int, method: str, status: str) -> Entity:
        payment = entities.payment(order, amount, method, status)
        self.payments[payment["id"]] = payment
        return payment


@contextlib.asynccontextmanager
async def razorpay_fake(
    key_id: str = "rzp_test_fakekey",
    key_secret: str = "fake-key-secret",
    webhook_secret: str = "fake-webhook-secret",
) -> AsyncIterator[RazorpayFake]:
    """Run a ``RazorpayFake`` on a free loopback port; ``fake.base_url`` is set inside."""
    fake = RazorpayFake(key_id, key_secret, webhook_secret)
    async with serve(fake.app) as url:
        fake.base_url = url
        try:
            yield fake
        finally:
            fake.release()


__all__ = ["Call", "RazorpayFake", "razorpay_fake"]

"""Both gateways behave the same through the port (the shared contract)."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from api.errors import GatewayError, InvalidSignature
from api.payments.base import PaymentGateway
from api.payments.razorpay_gateway import RazorpayGateway
from api.payments.test_gateway import TestGateway
from api.payments.webhooks import SignedWebhook
from tests.fakes.razorpay_server import razorpay_fake


@dataclass
class Kit:
    """A gateway plus the shopper's side of its checkout."""

    gateway: PaymentGateway
    pay: Callable[[str], dict[str, str]]
    fail: Callable[[str], str]
    webhook: Callable[..., SignedWebhook]


@pytest.fixture(params=["razorpay", "test"])
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    if request.param == "test":
        local = TestGateway("contract-secret")
        yield Kit(
            gateway=local,
            pay=local.complete_payment,
            fail=lambda oid: local.complete_payment(oid, succeed=False)["razorpay_payment_id"],
            webhook=local.webhook,
        )
        return
    async with razorpay_fake() as fake:

        def pay(order_id: str) -> dict[str, str]:
            payment_id, signature = fake.pay(order_id)
            return {
                "razorpay_order_id": order_id,
                "razorpay_payment_id": payment_id,
                "razorpay_signature": signature,
            }

        remote = RazorpayGateway(
            fake.key_id, fake.key_secret, fake.webhook_secret, base_url=fake.base_url
        )
        yield Kit(gateway=remote, pay=pay, fail=fake.fail, webhook=fake.webhook)


async def _paid(kit: Kit, amount: int = 3000) -> tuple[str, str]:
    order = await kit.gateway.create_order(
        amount=amount, currency="INR", receipt="sv-contract", notes={"order": "o-1"}
    )
    checkout = kit.pay(order.id)
    return order.id, checkout["razorpay_payment_id"]


async def test_order_is_created_as_asked(kit: Kit) -> None:
    order = await kit.gateway.create_order(
        amount=2500, currency="INR", receipt="sv-42", notes={"machine": "m1"}
    )
    assert order.id.startswith("order_")
    assert (order.amount, order.currency, order.receipt, order.status) == (
        2500,
        "INR",
        "sv-42",
        "created",
    )
    assert kit.gateway.name in ("razorpay", "test")
    assert kit.gateway.key_id.startswith("rzp_")


async def test_checkout_signature_verifies_and_forgeries_do_not(kit: Kit) -> None:
    order = await kit.gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    checkout = kit.pay(order.id)
    oid, pid, sig = (
        checkout["razorpay_order_id"],
        checkout["razorpay_payment_id"],
        checkout["razorpay_signature"],
    )
    verify = kit.gateway.verify_payment_signature
    assert verify(order_id=oid, payment_id=pid, signature=sig)
    other = await kit.gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    assert not verify(order_id=other.id, payment_id=pid, signature=sig)
    assert not verify(order_id=oid, payment_id=pid + "x", signature=sig)
    assert not verify(order_id=oid, payment_id=pid, signature=sig.upper())
    assert not verify(order_id=oid, payment_id=pid, signature="")
    assert not verify(order_id=oid, payment_id=pid, signature="é" * 64)


async def test_paid_order_shows_a_captured_payment(kit: Kit) -> None:
    order_id, payment_id = await _paid(kit, 3000)
    payment = await kit.gateway.fetch_payment(payment_id)
    assert (payment.order_id, payment.amount, payment.currency, payment.status) == (
        order_id,
        3000,
        "INR",
        "captured",
    )
    assert await kit.gateway.payments_for_order(order_id) == [payment]


async def test_failed_payment_is_listed_as_failed(kit: Kit) -> None:
    order = await kit.gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    payment_id = kit.fail(order.id)
    payments = await kit.gateway.payments_for_order(order.id)
    assert [(p.id, p.status) for p in payments] == [(payment_id, "failed")]


async def test_refunds_partial_then_the_rest_and_never_more(kit: Kit) -> None:
    _, payment_id = await _paid(kit, 3000)
    gw = kit.gateway
    first = await gw.refund(payment_id=payment_id, amount=1000, idempotency_key="k1", notes={})
    assert (first.payment_id, first.amount, first.status) == (payment_id, 1000, "processed")
    assert (await gw.fetch_payment(payment_id)).status == "captured"
    rest = await gw.refund(payment_id=payment_id, amount=2000, idempotency_key="k2", notes={})
    assert rest.id != first.id
    assert (await gw.fetch_payment(payment_id)).status == "refunded"
    with pytest.raises(GatewayError):
        await gw.refund(payment_id=payment_id, amount=1, idempotency_key="k3", notes={})
    assert await gw.fetch_refund(payment_id=payment_id, refund_id=first.id) == first


async def test_same_idempotency_key_refunds_once(kit: Kit) -> None:
    _, payment_id = await _paid(kit, 3000)
    gw = kit.gateway
    one = await gw.refund(payment_id=payment_id, amount=3000, idempotency_key="same", notes={})
    two = await gw.refund(payment_id=payment_id, amount=3000, idempotency_key="same", notes={})
    assert one == two
    assert (await gw.fetch_payment(payment_id)).status == "refunded"


async def test_refund_beyond_the_capture_is_refused(kit: Kit) -> None:
    _, payment_id = await _paid(kit, 3000)
    with pytest.raises(GatewayError):
        await kit.gateway.refund(payment_id=payment_id, amount=3001, idempotency_key="k", notes={})
    assert (await kit.gateway.fetch_payment(payment_id)).status == "captured"


async def test_signed_webhook_parses_and_forgery_is_refused(kit: Kit) -> None:
    order_id, payment_id = await _paid(kit, 3000)
    delivery = kit.webhook("payment.captured", payment_id=payment_id)
    event = kit.gateway.parse_webhook(delivery.body, delivery.signature, event_id=delivery.event_id)
    assert (event.id, event.event, event.order_id, event.payment_id) == (
        delivery.event_id,
        "payment.captured",
        order_id,
        payment_id,
    )
    assert (event.amount, event.status, event.refund_id) == (3000, "captured", None)
    tampered = delivery.body.replace(b"3000", b"3001")
    with pytest.raises(InvalidSignature):
        kit.gateway.parse_webhook(tampered, delivery.signature)
    with pytest.raises(InvalidSignature):
        kit.gateway.parse_webhook(delivery.body, "")


async def test_refund_webhook_describes_the_refund(kit: Kit) -> None:
    _, payment_id = await _paid(kit, 3000)
    refund = await kit.gateway.refund(
        payment_id=payment_id, amount=500, idempotency_key="k", notes={}
    )
    delivery = kit.webhook("refund.processed", refund_id=refund.id)
    event = kit.gateway.parse_webhook(delivery.body, delivery.signature)
    assert event.id == f"refund.processed:{refund.id}"
    assert (event.refund_id, event.payment_id, event.amount, event.status) == (
        refund.id,
        payment_id,
        500,
        "processed",
    )


async def test_unknown_payment_and_tiny_order_are_gateway_errors(kit: Kit) -> None:
    with pytest.raises(GatewayError):
        await kit.gateway.fetch_payment("pay_doesnotexist00")
    with pytest.raises(GatewayError):
        await kit.gateway.create_order(amount=99, currency="INR", receipt="r", notes={})

"""The built-in test gateway: the shopper's round trip and its own rules."""

import pytest

from api.errors import GatewayError, InvalidRequest
from api.payments.base import PaymentGateway
from api.payments.test_gateway import TestGateway


def test_identity_and_not_collected() -> None:
    gateway: PaymentGateway = TestGateway("s3cret")
    assert (gateway.name, gateway.key_id) == ("test", "rzp_test_smartvend")
    assert TestGateway.__test__ is False
    with pytest.raises(ValueError):
        TestGateway("")


async def test_round_trip_pay_verify_refund() -> None:
    gateway = TestGateway("s3cret")
    order = await gateway.create_order(
        amount=5000, currency="INR", receipt="sv-1", notes={"order": "o1"}
    )
    checkout = gateway.complete_payment(order.id)
    assert set(checkout) == {"razorpay_order_id", "razorpay_payment_id", "razorpay_signature"}
    assert gateway.verify_payment_signature(
        order_id=checkout["razorpay_order_id"],
        payment_id=checkout["razorpay_payment_id"],
        signature=checkout["razorpay_signature"],
    )
    other = TestGateway("another")
    assert not other.verify_payment_signature(
        order_id=checkout["razorpay_order_id"],
        payment_id=checkout["razorpay_payment_id"],
        signature=checkout["razorpay_signature"],
    )
    payment = await gateway.fetch_payment(checkout["razorpay_payment_id"])
    assert (payment.status, payment.amount, payment.order_id) == ("captured", 5000, order.id)
    refund = await gateway.refund(
        payment_id=payment.id, amount=5000, idempotency_key="o1", notes={}
    )
    assert refund.status == "processed"
    assert (await gateway.fetch_payment(payment.id)).status == "refunded"
    with pytest.raises(GatewayError):
        await gateway.fetch_refund(payment_id="pay_other", refund_id=refund.id)


async def test_failed_payment_then_a_successful_retry() -> None:
    gateway = TestGateway("s3cret")
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    failed = gateway.complete_payment(order.id, succeed=False)
    assert "error" in failed and "razorpay_signature" not in failed
    retry = gateway.complete_payment(order.id)
    statuses = [p.status for p in await gateway.payments_for_order(order.id)]
    assert statuses == ["failed", "captured"]
    with pytest.raises(GatewayError):
        await gateway.refund(
            payment_id=failed["razorpay_payment_id"], amount=100, idempotency_key="x", notes={}
        )
    with pytest.raises(InvalidRequest):
        gateway.complete_payment(order.id)
    assert retry["razorpay_order_id"] == order.id


async def test_refuses_what_razorpay_refuses() -> None:
    gateway = TestGateway("s3cret")
    with pytest.raises(InvalidRequest):
        gateway.complete_payment("order_unknown0000000")
    with pytest.raises(GatewayError):
        await gateway.create_order(amount=2500, currency="INR", receipt="r" * 41, notes={})
    with pytest.raises(GatewayError):
        await gateway.payments_for_order("order_unknown0000000")
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    payment_id = gateway.complete_payment(order.id)["razorpay_payment_id"]
    with pytest.raises(GatewayError):
        await gateway.refund(payment_id=payment_id, amount=0, idempotency_key="z", notes={})
    first = await gateway.refund(payment_id=payment_id, amount=100, idempotency_key="a", notes={})
    assert first.amount == 100
    other = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    other_payment = gateway.complete_payment(other.id)["razorpay_payment_id"]
    with pytest.raises(GatewayError, match="another payment"):
        await gateway.refund(payment_id=other_payment, amount=100, idempotency_key="a", notes={})

"""The real Razorpay SDK, through RazorpayGateway, against the fake server."""

import json

import pytest
import razorpay

from api.errors import ConfigurationError, GatewayError, InvalidRequest, InvalidSignature
from api.payments.razorpay_gateway import RazorpayGateway
from tests.fakes.razorpay_server import RazorpayFake
from tests.support.ports import free_port


async def test_order_carries_capture_receipt_and_notes(
    fake: RazorpayFake, gateway: RazorpayGateway
) -> None:
    order = await gateway.create_order(
        amount=2500, currency="INR", receipt="sv-7", notes={"order": "o-7"}
    )
    call = fake.calls[-1]
    assert (call.method, call.path) == ("POST", "/v1/orders")
    assert json.loads(call.body) == {
        "amount": 2500,
        "currency": "INR",
        "receipt": "sv-7",
        "notes": {"order": "o-7"},
        "payment_capture": 1,
    }
    assert call.headers["authorization"].startswith("Basic ")
    assert fake.orders[order.id]["notes"] == {"order": "o-7"}
    payment_id, _ = fake.pay(order.id)
    assert (await gateway.fetch_payment(payment_id)).status == "captured"


async def test_empty_notes_come_back_as_a_list_and_are_fine(
    fake: RazorpayFake, gateway: RazorpayGateway
) -> None:
    order = await gateway.create_order(amount=100, currency="INR", receipt="", notes={})
    assert fake.orders[order.id]["notes"] == []
    assert order.amount == 100


async def test_our_checks_agree_with_the_sdk(fake: RazorpayFake, gateway: RazorpayGateway) -> None:
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    payment_id, signature = fake.pay(order.id)
    sdk = razorpay.Client(auth=(fake.key_id, fake.key_secret))
    assert sdk.utility.verify_payment_signature(
        {
            "razorpay_order_id": order.id,
            "razorpay_payment_id": payment_id,
            "razorpay_signature": signature,
        }
    )
    assert gateway.verify_payment_signature(
        order_id=order.id, payment_id=payment_id, signature=signature
    )
    delivery = fake.webhook("payment.captured", payment_id=payment_id)
    assert sdk.utility.verify_webhook_signature(
        delivery.body.decode(), delivery.signature, fake.webhook_secret
    )
    assert gateway.parse_webhook(delivery.body, delivery.signature).payment_id == payment_id


async def test_refund_sends_the_idempotency_header(
    fake: RazorpayFake, gateway: RazorpayGateway
) -> None:
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    payment_id, _ = fake.pay(order.id)
    refund = await gateway.refund(
        payment_id=payment_id, amount=2500, idempotency_key="order-1:refund", notes={"o": "1"}
    )
    call = fake.calls[-1]
    assert call.path == f"/v1/payments/{payment_id}/refund"
    assert call.headers["x-refund-idempotency"] == "order-1:refund"
    assert json.loads(call.body) == {"amount": 2500, "speed": "normal", "notes": {"o": "1"}}
    again = await gateway.refund(
        payment_id=payment_id, amount=2500, idempotency_key="order-1:refund", notes={"o": "1"}
    )
    assert again == refund
    assert [r["id"] for r in fake.refunds] == [refund.id]


async def test_pending_refund_settles_later(fake: RazorpayFake, gateway: RazorpayGateway) -> None:
    fake.refunds_pending = True
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    payment_id, _ = fake.pay(order.id)
    refund = await gateway.refund(payment_id=payment_id, amount=1000, idempotency_key="k", notes={})
    assert refund.status == "pending"
    assert fake.settle_refunds() == [refund.id]
    settled = await gateway.fetch_refund(payment_id=payment_id, refund_id=refund.id)
    assert (settled.id, settled.status) == (refund.id, "processed")


async def test_failed_refund_gives_the_amount_back(
    fake: RazorpayFake, gateway: RazorpayGateway
) -> None:
    fake.refunds_pending = True
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    payment_id, _ = fake.pay(order.id)
    refund = await gateway.refund(payment_id=payment_id, amount=2500, idempotency_key="a", notes={})
    fake.settle_refund(refund.id, status="failed")
    assert (await gateway.fetch_refund(payment_id=payment_id, refund_id=refund.id)).status == (
        "failed"
    )
    assert (await gateway.fetch_payment(payment_id)).status == "captured"
    fake.refunds_pending = False
    retry = await gateway.refund(payment_id=payment_id, amount=2500, idempotency_key="b", notes={})
    assert retry.status == "processed"


async def test_forged_amount_is_visible_on_the_payment(
    fake: RazorpayFake, gateway: RazorpayGateway
) -> None:
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    payment_id, signature = fake.pay(order.id, amount=100)
    assert gateway.verify_payment_signature(
        order_id=order.id, payment_id=payment_id, signature=signature
    )
    assert (await gateway.fetch_payment(payment_id)).amount == 100


async def test_order_paid_webhook_names_order_and_payment(
    fake: RazorpayFake, gateway: RazorpayGateway
) -> None:
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    payment_id, _ = fake.pay(order.id)
    delivery = fake.webhook("order.paid", order_id=order.id, payment_id=payment_id)
    event = gateway.parse_webhook(delivery.body, delivery.signature)
    assert (event.event, event.order_id, event.payment_id, event.status, event.amount) == (
        "order.paid",
        order.id,
        payment_id,
        "captured",
        2500,
    )
    assert event.id == f"order.paid:{payment_id}"
    doc = json.loads(delivery.body)
    assert doc["entity"] == "event"
    assert doc["contains"] == ["payment", "order"]


async def test_webhook_signed_with_another_secret_is_refused(
    fake: RazorpayFake, gateway: RazorpayGateway
) -> None:
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    payment_id, _ = fake.pay(order.id)
    forged = fake.webhook("payment.captured", payment_id=payment_id, secret="guessed")
    with pytest.raises(InvalidSignature):
        gateway.parse_webhook(forged.body, forged.signature)
    unconfigured = RazorpayGateway(fake.key_id, fake.key_secret, None, base_url=fake.base_url)
    genuine = fake.webhook("payment.captured", payment_id=payment_id)
    with pytest.raises(InvalidSignature):
        unconfigured.parse_webhook(genuine.body, genuine.signature)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe", b"[]", b'{"event":"payment.captured"}', b'{"payload":{}}'],
)
def test_signed_but_malformed_webhook_is_invalid_request(body: bytes) -> None:
    from api.payments.signatures import sign

    gateway = RazorpayGateway("rzp_test_x", "key-secret", "hook-secret")
    with pytest.raises(InvalidRequest):
        gateway.parse_webhook(body, sign("hook-secret", body))
    with pytest.raises(InvalidSignature):
        gateway.parse_webhook(body, sign("other", body))


async def test_server_error_is_a_gateway_error_and_the_next_call_works(
    fake: RazorpayFake, gateway: RazorpayGateway
) -> None:
    fake.fail_next(1)
    with pytest.raises(GatewayError, match="create order"):
        await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    fake.fail_next(1, status=502, body=b"<html>Bad Gateway</html>")
    with pytest.raises(GatewayError):
        await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    order = await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})
    assert list(fake.orders) == [order.id]


async def test_unexpected_answer_is_a_gateway_error(
    fake: RazorpayFake, gateway: RazorpayGateway
) -> None:
    fake.fail_next(1, status=200, body=b'{"id": 5, "entity": "order"}')
    with pytest.raises(GatewayError, match="id"):
        await gateway.create_order(amount=2500, currency="INR", receipt="r", notes={})


async def test_wrong_credentials_are_a_gateway_error(fake: RazorpayFake) -> None:
    wrong = RazorpayGateway(fake.key_id, "not-the-secret", None, base_url=fake.base_url)
    with pytest.raises(GatewayError, match="api key"):
        await wrong.create_order(amount=2500, currency="INR", receipt="r", notes={})
    assert fake.orders == {}


async def test_connection_refused_is_a_gateway_error() -> None:
    closed = RazorpayGateway(
        "rzp_test_x", "secret", None, base_url=f"http://127.0.0.1:{free_port()}", timeout=2.0
    )
    with pytest.raises(GatewayError, match="fetch payment"):
        await closed.fetch_payment("pay_anything000000")


async def test_a_silent_server_times_out(fake: RazorpayFake) -> None:
    slow = RazorpayGateway(fake.key_id, fake.key_secret, None, base_url=fake.base_url, timeout=0.3)
    fake.stall_next(1)
    with pytest.raises(GatewayError, match="timed out"):
        await slow.payments_for_order("order_anything00000")
    fake.release()
    assert fake.calls[-1].path == "/v1/orders/order_anything00000/payments"


@pytest.mark.parametrize(
    ("key_id", "secret", "base_url"),
    [
        ("", "s", None),
        ("rzp_test_x", "", None),
        ("rzp_test_x", "s", "https://api.razorpay.com/v1"),
        ("rzp_test_x", "s", "127.0.0.1:9"),
    ],
)
def test_unusable_settings_are_refused_at_start(
    key_id: str, secret: str, base_url: str | None
) -> None:
    with pytest.raises(ConfigurationError):
        RazorpayGateway(key_id, secret, "hook", base_url=base_url)

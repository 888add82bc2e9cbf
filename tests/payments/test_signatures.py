"""Signature checks: Razorpay's scheme, constant-time, never raising on garbage."""

from hypothesis import given, settings
from hypothesis import strategies as st

from api.errors import InvalidRequest, InvalidSignature
from api.payments import signatures
from api.payments.test_gateway import TestGateway

GARBAGE = st.one_of(st.text(), st.sampled_from(["", "\ud800", "é" * 64, "0" * 64, "\x00"]))


def test_payment_signature_is_hmac_of_order_bar_payment() -> None:
    # HMAC-SHA256("secret", "order_1|pay_1"), computed independently.
    expected = "52115a0d3400de9e86aade1f1b6eba9e8974604f4e267a9e9a16633a4c8dd2cb"
    computed = signatures.payment_signature("secret", "order_1", "pay_1")
    assert computed == expected
    assert signatures.check_payment("secret", "order_1", "pay_1", computed)
    assert not signatures.check_payment("secret", "order_1", "pay_1", expected[:-1] + "0")


@settings(deadline=None)
@given(order_id=GARBAGE, payment_id=GARBAGE, signature=GARBAGE)
def test_payment_check_never_raises(order_id: str, payment_id: str, signature: str) -> None:
    gateway = TestGateway("s3cret")
    result = gateway.verify_payment_signature(
        order_id=order_id, payment_id=payment_id, signature=signature
    )
    assert result is False


def test_non_string_and_empty_inputs_are_false() -> None:
    good = signatures.payment_signature("k", "o", "p")
    assert signatures.check_payment("k", "o", "p", good)
    assert not signatures.check_payment("", "o", "p", good)
    assert not signatures.check_payment("k", None, "p", good)
    assert not signatures.check_payment("k", "o", "p", None)
    assert not signatures.check("k", b"body", b"bytes-not-str")


@settings(deadline=None)
@given(body=st.binary(max_size=300), signature=GARBAGE)
def test_webhook_garbage_is_refused_not_crashing(body: bytes, signature: str) -> None:
    gateway = TestGateway("s3cret")
    try:
        gateway.parse_webhook(body, signature)
    except InvalidSignature:
        return
    raise AssertionError("a garbage signature was accepted")


@settings(deadline=None)
@given(body=st.binary(max_size=300))
def test_signed_garbage_body_is_invalid_request(body: bytes) -> None:
    gateway = TestGateway("s3cret")
    try:
        event = gateway.parse_webhook(body, signatures.sign("s3cret", body))
    except InvalidRequest:
        return
    assert event.event  # random bytes that happen to be a webhook still decode sanely

"""Razorpay's HMAC-SHA256 signatures, computed and checked in constant time.

A payment signature is ``hex(HMAC-SHA256(key_secret, f"{order_id}|{payment_id}"))``;
a webhook signature is ``hex(HMAC-SHA256(webhook_secret, raw_body))``.  The
checks return ``False`` on any malformed input instead of raising.
"""

import hashlib
import hmac


def sign(secret: str, message: bytes) -> str:
    """Hex HMAC-SHA256 of ``message`` under ``secret``."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def payment_signature(secret: str, order_id: str, payment_id: str) -> str:
    return sign(secret, f"{order_id}|{payment_id}".encode())


def check(secret: str, message: bytes, signature: object) -> bool:
    """Constant-time comparison of ``signature`` with the expected one."""
    if not secret or not isinstance(signature, str) or not signature:
        return False
    try:
        given = signature.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(sign(secret, message).encode("ascii"), given)


def check_payment(secret: str, order_id: object, payment_id: object, signature: object) -> bool:
    if not isinstance(order_id, str) or not isinstance(payment_id, str):
        return False
    if not order_id or not payment_id:
        return False
    try:
        message = f"{order_id}|{payment_id}".encode()
    except UnicodeEncodeError:
        return False
    return check(secret, message, signature)

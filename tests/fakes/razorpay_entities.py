"""Razorpay-shaped entities (order, payment, refund, webhook event) for the fake."""

import hashlib
import hmac
import json
import secrets
import string
import time
from typing import Any

Entity = dict[str, Any]
_ALPHABET = string.ascii_letters + string.digits
ACCOUNT_ID = "acc_" + "F" * 14


def new_id(prefix: str) -> str:
    """A prefix and 14 base62 characters, like Razorpay's ids."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(14))


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def order(amount: int, currency: str, receipt: str | None, notes: Any) -> Entity:
    return {
        "id": new_id("order_"),
        "entity": "order",
        "amount": amount,
        "amount_paid": 0,
        "amount_due": amount,
        "currency": currency,
        "receipt": receipt,
        "offer_id": None,
        "status": "created",
        "attempts": 0,
        "notes": notes or [],  # Razorpay sends empty notes as a list
        "created_at": int(time.time()),
    }


def payment(of_order: Entity, amount: int, method: str, status: str) -> Entity:
    entity: Entity = {
        "id": new_id("pay_"),
        "entity": "payment",
        "amount": amount,
        "currency": of_order["currency"],
        "status": status,
        "order_id": of_order["id"],
        "invoice_id": None,
        "international": False,
        "method": method,
        "amount_refunded": 0,
        "refund_status": None,
        "captured": status == "captured",
        "description": None,
        "vpa": "success@razorpay" if method == "upi" else None,
        "email": "shopper@example.com",
        "contact": "+919000090000",
        "notes": [],
        "fee": 0 if status == "failed" else amount * 2 // 100,
        "tax": 0,
        "error_code": None,
        "error_description": None,
        "error_source": None,
        "error_step": None,
        "error_reason": None,
        "acquirer_data": {"rrn": str(secrets.randbelow(10**12))},
        "created_at": int(time.time()),
    }
    if status == "failed":
        entity.update(
            error_code="BAD_REQUEST_ERROR",
            error_description="Payment processing failed because of incorrect OTP",
            error_source="customer",
            error_step="payment_authentication",
            error_reason="incorrect_otp",
        )
    return entity


def refund(of_payment: Entity, amount: int, request: Entity, status: str) -> Entity:
    return {
        "id": new_id("rfnd_"),
        "entity": "refund",
        "amount": amount,
        "currency": of_payment["currency"],
        "payment_id": of_payment["id"],
        "notes": request.get("notes") or [],
        "receipt": request.get("receipt"),
        "acquirer_data": {"arn": None},
        "created_at": int(time.time()),
        "batch_id": None,
        "status": status,
        "speed_processed": "normal",
        "speed_requested": request.get("speed", "normal"),
    }


def mark_refunded(entity: Entity) -> None:
    """Set a captured payment's status and refund_status from amount_refunded."""
    refunded = entity["amount_refunded"]
    full = refunded >= entity["amount"]
    entity["status"] = "refunded" if full else "captured"
    entity["refund_status"] = "full" if full else ("partial" if refunded else None)


def webhook_body(event: str, payload: dict[str, Entity]) -> bytes:
    """The JSON body Razorpay posts: entities wrapped as payload.<name>.entity."""
    doc = {
        "entity": "event",
        "account_id": ACCOUNT_ID,
        "event": event,
        "contains": list(payload),
        "payload": {name: {"entity": dict(entity)} for name, entity in payload.items()},
        "created_at": int(time.time()),
    }
    return json.dumps(doc, separators=(",", ":")).encode()

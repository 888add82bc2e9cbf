"""Decoding Razorpay-shaped webhook bodies (the signature is checked before)."""

import json
from dataclasses import dataclass
from typing import Any

from api.errors import InvalidRequest
from api.payments.base import WebhookEvent


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook as it travels: raw body plus the two headers that matter."""

    body: bytes
    signature: str
    event_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": self.signature,
            "X-Razorpay-Event-Id": self.event_id,
        }


def _entity(payload: dict[str, Any], name: str) -> dict[str, Any] | None:
    wrapper = payload.get(name)
    if wrapper is None:
        return None
    entity = wrapper.get("entity") if isinstance(wrapper, dict) else None
    if not isinstance(entity, dict):
        raise InvalidRequest(f"webhook payload.{name} has no entity object")
    return entity


def _opt_str(entity: dict[str, Any] | None, key: str) -> str | None:
    if entity is None:
        return None
    value = entity.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidRequest(f"webhook field {key} is not a string")


def _opt_int(entity: dict[str, Any] | None, key: str) -> int | None:
    if entity is None:
        return None
    value = entity.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise InvalidRequest(f"webhook field {key} is not an integer")


def parse_event(body: bytes, *, event_id: str | None = None) -> WebhookEvent:
    """Decode a webhook body; raises ``InvalidRequest`` on anything else."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("webhook body is not JSON") from exc
    if not isinstance(doc, dict):
        raise InvalidRequest("webhook body is not a JSON object")
    event = doc.get("event")
    payload = doc.get("payload")
    if not isinstance(event, str) or not event or not isinstance(payload, dict):
        raise InvalidRequest("webhook body lacks event or payload")

    payment = _entity(payload, "payment")
    refund = _entity(payload, "refund")
    order = _entity(payload, "order")
    kind = event.split(".")[0]
    if kind == "refund":
        main = refund
    elif kind == "order":
        main = payment or order
    else:
        main = payment
    main = main or refund or payment or order

    payment_id = _opt_str(payment, "id") or _opt_str(refund, "payment_id")
    order_id = _opt_str(order, "id") or _opt_str(payment, "order_id")
    refund_id = _opt_str(refund, "id")
    main_id = _opt_str(main, "id")
    if event_id is None:
        if main_id is None:
            raise InvalidRequest("webhook carries no entity id")
        event_id = f"{event}:{main_id}"
    return WebhookEvent(
        id=event_id,
        event=event,
        order_id=order_id,
        payment_id=payment_id,
        refund_id=refund_id,
        amount=_opt_int(main, "amount"),
        status=_opt_str(main, "status"),
    )

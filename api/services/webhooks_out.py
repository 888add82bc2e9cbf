"""Outgoing webhooks: operators' receivers of signed JSON events.

``emit`` writes one delivery per subscribed receiver in the caller's transaction
(like the outbox); the leader's ``WebhookSender.run_once`` POSTs what is due with
``X-SmartVend-Event-Id`` and ``X-SmartVend-Signature: sha256=<HMAC of the raw body>``.
Anything but a 2xx within 5 s is retried with backoff for 24 hours; receivers
de-duplicate by the event id (a delivery may arrive more than once).
"""

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import InvalidRequest, NotFound
from api.services import audit
from api.services.context import Context
from schema.models import WEBHOOK_EVENTS, Alert, OutgoingWebhook, WebhookDelivery

log = logging.getLogger(__name__)

EVENTS = tuple(e for e in WEBHOOK_EVENTS if e != "test")
TIMEOUT_S = 5.0
GIVE_UP_AFTER_S = 24 * 3600
FIRST_RETRY_S = 10
MAX_RETRY_S = 3600
BATCH = 50


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> int:
    """Seconds before the next try after ``attempts`` failed ones: 10 s, 20 s, … 1 h."""
    return int(min(FIRST_RETRY_S * 2 ** max(attempts - 1, 0), MAX_RETRY_S))


async def emit(s: AsyncSession, kind: str, data: Mapping[str, Any], now: int) -> str | None:
    """Queue event ``kind`` for every receiver subscribed to it; its id, or None if none."""
    hooks = (
        await s.scalars(select(OutgoingWebhook).where(OutgoingWebhook.removed_at.is_(None)))
    ).all()
    targets = [h for h in hooks if kind in h.events]
    if not targets:
        return None
    event_id = "evt_" + secrets.token_hex(12)
    body = json.dumps(
        {"id": event_id, "type": kind, "created_at": now, "data": dict(data)},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for hook in targets:
        s.add(_delivery(hook.id, event_id, kind, body, now))
    return event_id


def _delivery(webhook_id: str, event_id: str, kind: str, body: str, now: int) -> WebhookDelivery:
    return WebhookDelivery(
        webhook_id=webhook_id,
        event_id=event_id,
        type=kind,
        body=body,
        status="pending",
        attempts=0,
        next_at=now,
        created_at=now,
    )


async def alerts_raised(s: AsyncSession, now: int) -> None:
    """An ``alert`` event for every Alert added to ``s`` and not yet flushed."""
    for found in list(s.new):
        if isinstance(found, Alert):
            data = {
                "kind": found.kind,
                "machine_id": found.machine_id,
                "order_id": getattr(found, "order_id", None),
                "message": found.message,
            }
            await emit(s, "alert", data, now)


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("url must be an http:// or https:// address")
    return url


def check_events(events: list[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(events or []))
    if not chosen or any(e not in EVENTS for e in chosen):
        raise InvalidRequest(f"events: one or more of {', '.join(EVENTS)}")
    return chosen


def as_json(hook: OutgoingWebhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "created_at": hook.created_at,
    }


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "event_id": d.event_id,
        "type": d.type,
        "status": d.status,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "next_at": d.next_at if d.status == "pending" else None,
        "delivered_at": d.delivered_at,
    }


class OutgoingWebhooks:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def create(self, url: str, events: list[str] | None, *, by: str) -> OutgoingWebhook:
        now = self.ctx.clock.now()
        hook = OutgoingWebhook(
            id="wh_" + secrets.token_hex(8),
            url=check_url(url),
            events=check_events(events),
            secret="whsec_" + secrets.token_urlsafe(32),
            created_by=by,
            created_at=now,
        )
        async with self.ctx.db.begin() as s:
            s.add(hook)
            after = {"url": hook.url, "events": hook.events}
            audit.record(s, by, "webhook_changed", f"webhook:{hook.id}", None, after, at=now)
        return hook

    async def active(self) -> list[OutgoingWebhook]:
        async with self.ctx.db() as s:
            query = (
                select(OutgoingWebhook)
                .where(OutgoingWebhook.removed_at.is_(None))
                .order_by(OutgoingWebhook.created_at, OutgoingWebhook.id)
            )
            return list((await s.scalars(query)).all())

    async def remove(self, webhook_id: str, *, by: str) -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            hook = await self._get(s, webhook_id)
            hook.removed_at = now
            before = {"url": hook.url, "events": hook.events}
            audit.record(s, by, "webhook_changed", f"webhook:{hook.id}", before, None, at=now)

    async def send_test(self, webhook_id: str, *, by: str) -> str:
        now = self.ctx.clock.now()
        event_id = "evt_" + secrets.token_hex(12)
        body = json.dumps(
            {"id": event_id, "type": "test", "created_at": now, "data": {"by": by}},
            separators=(",", ":"),
        )
        async with self.ctx.db.begin() as s:
            hook = await self._get(s, webhook_id)
            s.add(_delivery(hook.id, event_id, "test", body, now))
        return event_id

    async def deliveries(self, webhook_id: str, limit: int = 100) -> list[WebhookDelivery]:
        async with self.ctx.db() as s:
            if await s.get(OutgoingWebhook, webhook_id) is None:
                raise NotFound(f"no webhook {webhook_id}")
            query = (
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(WebhookDelivery.id.desc())
                .limit(limit)
            )
            return list((await s.scalars(query)).all())

    @staticmethod
    async def _get(s: AsyncSession, webhook_id: str) -> OutgoingWebhook:
        hook = await s.get(OutgoingWebhook, webhook_id)
        if hook is None or hook.removed_at is not None:
            raise NotFound(f"no webhook {webhook_id}")
        return hook


class Poster(Protocol):
    """POST ``body`` to ``url``: the HTTP status (raises OSError-like errors on failure)."""

    async def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int: ...


async def httpx_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    import httpx

    async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False) as client:
        answer = await client.post(url, content=body, headers=headers)
        return answer.status_code


class WebhookSender:
    """The leader's periodic work: send what is due, once each per run."""

    def __init__(self, ctx: Context, post: Poster = httpx_post) -> None:
        self.ctx = ctx
        self.post = post

    async def run_once(self) -> int:
        """Deliveries attempted in this run."""
        now = self.ctx.clock.now()
        async with self.ctx.db() as s:
            due = (
                await s.execute(
                    select(WebhookDelivery, OutgoingWebhook)
                    .join(OutgoingWebhook, OutgoingWebhook.id == WebhookDelivery.webhook_id)
                    .where(WebhookDelivery.status == "pending", WebhookDelivery.next_at <= now)
                    .order_by(WebhookDelivery.next_at, WebhookDelivery.id)
                    .limit(BATCH)
                )
            ).all()
        for delivery, hook in due:
            await self._attempt(delivery, hook)
        return len(due)

    async def _attempt(self, delivery: WebhookDelivery, hook: OutgoingWebhook) -> None:
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "SmartVend-Webhooks/1",
            "X-SmartVend-Event-Id": delivery.event_id,
            "X-SmartVend-Signature": sign(hook.secret, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            status = await self.post(hook.url, body, headers)
        except Exception as exc:  # any transport failure is one failed attempt
            error = f"{type(exc).__name__}: {exc}"[:300]
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            row = await s.get(WebhookDelivery, delivery.id, with_for_update=True)
            if row is None or row.status != "pending":
                return
            row.attempts += 1
            row.last_status = status
            row.last_error = error
            if status is not None and 200 <= status < 300:
                row.status = "delivered"
                row.delivered_at = now
            elif now - row.created_at >= GIVE_UP_AFTER_S:
                row.status = "failed"
            else:
                row.next_at = now + backoff(row.attempts)
                if error is None:
                    row.last_error = f"HTTP {status}"
        if error is not None or not (status is not None and 200 <= status < 300):
            log.info("webhook %s: %s attempt %d failed", hook.id, delivery.event_id, row.attempts)

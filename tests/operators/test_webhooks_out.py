"""Outgoing webhooks against a real receiver that checks the signature and refuses the
first attempts: signing, retries with backoff, de-duplication by id, the delivery log."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.clock import FakeClock
from api.services.audit import AuditFilter
from api.services.machines import NewMachine
from api.services.webhooks_out import WebhookSender, backoff
from tests.admin.support import admin_client, admin_stack, post_form, vend
from tests.operators.support import bearer, token_of
from tests.support.stack import ADMIN_PASSWORD, Stack
from tests.support.uvicorn_server import serve


@dataclass
class Receiver:
    """Refuses the first ``fail_first`` deliveries with a 500; keeps each event id once."""

    secret: str = ""
    fail_first: int = 2
    attempts: list[tuple[str, bool]] = field(default_factory=list)  # (event id, signed right)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        raw = await request.body()
        expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(request.headers.get("x-smartvend-signature", ""), expected)
        event_id = request.headers.get("x-smartvend-event-id", "")
        self.attempts.append((event_id, signed))
        self.arrived.set()
        if not signed:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if len(self.attempts) <= self.fail_first:
            return JSONResponse({"error": "not yet"}, status_code=500)
        body = json.loads(raw)
        assert body["id"] == event_id
        self.events.setdefault(event_id, body)  # de-duplicated by id
        return JSONResponse({"ok": True})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = Starlette(routes=[Route("/hook", found.endpoint, methods=["POST"])])
    async with serve(app) as url:
        yield found, f"{url}/hook"


@pytest.fixture
async def stack(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Stack]:
    async with admin_stack(tmp_path, clock=clock) as running:
        await running.services.machines.register(
            NewMachine(machine_id="m-1", name="Mall", price_amount=2500, capacity=10, stock=5)
        )
        await running.services.machines.apply_status("m-1", {"state": "online", "boot": 1})
        yield running


async def test_signed_retried_deduplicated_and_logged(
    stack: Stack, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    sender = WebhookSender(stack.services.ctx)
    async with httpx.AsyncClient(base_url=stack.url, timeout=20) as http:
        admin = bearer(await token_of(http, "admin", ADMIN_PASSWORD))
        bad = await http.post(
            "/api/webhooks", json={"url": "ftp://x/y", "events": ["sale"]}, headers=admin
        )
        assert bad.status_code == 400
        odd = await http.post("/api/webhooks", json={"url": url, "events": ["tea"]}, headers=admin)
        assert odd.status_code == 400
        made = await http.post(
            "/api/webhooks", json={"url": url, "events": ["sale", "refund"]}, headers=admin
        )
        assert made.status_code == 201, made.text
        hook_id, got.secret = made.json()["id"], made.json()["secret"]
        listed = (await http.get("/api/webhooks", headers=admin)).json()["webhooks"]
        assert [(h["id"], h["url"], h["events"]) for h in listed] == [
            (hook_id, url, ["sale", "refund"])
        ]
        assert "secret" not in listed[0]

        order_id = await vend(stack.services, "m-1", 2)  # a sale: one event
        await sender.run_once()
        assert len(got.attempts) == 1 and got.attempts[0][1]  # signed right, refused
        assert await sender.run_once() == 0  # not due before the backoff
        clock.advance(backoff(1))
        await sender.run_once()
        clock.advance(backoff(2))
        await sender.run_once()
        assert len(got.events) == 1
        sale = next(iter(got.events.values()))
        assert sale["type"] == "sale" and sale["data"]["order_id"] == order_id
        assert sale["data"]["quantity"] == 2 and sale["data"]["amount"] == 5000
        assert [signed for _, signed in got.attempts] == [True, True, True]
        assert len({event_id for event_id, _ in got.attempts}) == 1  # one id, three tries

        log = (await http.get(f"/api/webhooks/{hook_id}/deliveries", headers=admin)).json()
        [entry] = log["deliveries"]
        assert (entry["status"], entry["attempts"], entry["last_status"]) == ("delivered", 3, 200)

        # A refund is an event too; a removed webhook gets nothing more.
        refund = await http.post(
            f"/api/orders/{order_id}/refund", json={"amount": 100, "reason": "late"}, headers=admin
        )
        assert refund.status_code == 201
        await sender.run_once()
        assert [e["type"] for e in got.events.values()] == ["sale", "refund"]
        assert (await http.delete(f"/api/webhooks/{hook_id}", headers=admin)).status_code == 200
        await vend(stack.services, "m-1", 1)
        await sender.run_once()
        assert len(got.events) == 2
        assert (await http.get("/api/webhooks", headers=admin)).json()["webhooks"] == []
        gone = await http.delete(f"/api/webhooks/{hook_id}", headers=admin)
        assert gone.status_code == 404
    changes = await stack.services.audit.entries(AuditFilter(action="webhook_changed"))
    assert [(e.actor, e.before is None, e.after is None) for e in reversed(changes)] == [
        ("admin", True, False),
        ("admin", False, True),
    ]


async def test_a_wrong_secret_is_refused_and_given_up_after_a_day(
    stack: Stack, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    got.secret = "not-the-secret"
    hook = await stack.services.outgoing_webhooks.create(url, ["sale"], by="admin")
    sender = WebhookSender(stack.services.ctx)
    await vend(stack.services, "m-1")
    await sender.run_once()
    assert got.attempts and not got.attempts[0][1]
    clock.advance(24 * 3600)
    await sender.run_once()
    [entry] = await stack.services.outgoing_webhooks.deliveries(hook.id)
    assert (entry.status, entry.attempts, entry.last_status) == ("failed", 2, 401)
    clock.advance(24 * 3600)
    assert await sender.run_once() == 0


async def test_dashboard_page_test_button_and_log(
    stack: Stack, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    got.fail_first = 0
    async with admin_client(stack) as admin:
        made = await post_form(
            admin, "/admin/webhooks", "/admin/webhooks", {"url": url, "events": "alert"}
        )
        assert made.status_code == 200 and "whsec_" in made.text
        [hook] = await stack.services.outgoing_webhooks.active()
        got.secret = hook.secret
        sent = await post_form(admin, "/admin/webhooks", f"/admin/webhooks/{hook.id}/test", {})
        assert sent.status_code == 303
        await WebhookSender(stack.services.ctx).run_once()
        assert [e["type"] for e in got.events.values()] == ["test"]
        page = await admin.get(f"/admin/webhooks?log={hook.id}")
        assert page.status_code == 200 and "delivered" in page.text and "test" in page.text


async def test_alerts_and_presence_are_events(stack: Stack) -> None:
    services = stack.services
    hook = await services.outgoing_webhooks.create(
        "http://127.0.0.1:9/unused", ["alert", "machine_online", "machine_offline"], by="admin"
    )
    await services.machines.apply_status("m-1", {"state": "offline", "boot": 1})
    await services.machines.apply_status("m-1", {"state": "online", "boot": 2})
    await services.machines.set_stock("m-1", 1, by="admin")
    assert await services.alerts.check_low_stock()
    await vend(services, "m-1")  # a sale: not subscribed
    logged = await services.outgoing_webhooks.deliveries(hook.id)
    kinds = [d.type for d in reversed(logged)]
    assert kinds == ["machine_offline", "machine_online", "alert"]
    alert = json.loads(logged[0].body)
    assert alert["data"]["kind"] == "low_stock" and alert["data"]["machine_id"] == "m-1"
    assert alert["id"] == logged[0].event_id and alert["type"] == "alert"


async def test_automatic_refunds_are_refund_events(stack: Stack) -> None:
    services = stack.services
    hook = await services.outgoing_webhooks.create("http://127.0.0.1:9/x", ["refund"], by="admin")
    order_id = await vend(services, "m-1", 2, dispensed=1)  # one did not come out
    [delivery] = await services.outgoing_webhooks.deliveries(hook.id)
    body = json.loads(delivery.body)
    assert body["type"] == "refund" and body["data"]["order_id"] == order_id
    assert body["data"]["amount"] == 2500 and body["data"]["machine_id"] == "m-1"

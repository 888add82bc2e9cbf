"""Money matches product, with the real razorpay SDK against a Razorpay-compatible fake."""

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from api.clock import FakeClock
from api.services.machines import NewMachine
from api.services.reconcile import GRACE_S
from schema.models import Command
from tests.fakes.razorpay_server import RazorpayFake, razorpay_fake
from tests.http.conftest import CLIENT, display_code
from tests.support.services import unfinished_commands
from tests.support.stack import Stack, running_stack

MID = "rzp-1"


@pytest.fixture
async def fake() -> AsyncIterator[RazorpayFake]:
    async with razorpay_fake() as running:
        yield running


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(int(time.time()))


@pytest.fixture
async def live(tmp_path: Path, fake: RazorpayFake, clock: FakeClock) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path,
        mqtt=False,
        clock=clock,
        razorpay_key_id=fake.key_id,
        razorpay_key_secret=fake.key_secret,
        razorpay_webhook_secret=fake.webhook_secret,
        razorpay_base_url=fake.base_url,
    ) as stack:
        await stack.services.machines.register(
            NewMachine(machine_id=MID, name="Atrium", price_amount=4000, capacity=10, stock=6)
        )
        await stack.services.machines.apply_status(MID, {"state": "online", "boot": 1})
        yield stack


@pytest.fixture
async def http(live: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=15) as client:
        yield client


async def order_for(live: Stack, http: httpx.AsyncClient, quantity: int) -> dict[str, object]:
    code = await display_code(live, MID)
    lock = (await http.post("/api/lock-by-code", json={"code": code, "client_id": CLIENT})).json()
    r = await http.post(
        "/create-order",
        json={"session_id": lock["session_id"], "client_id": CLIENT, "quantity": quantity},
    )
    assert r.status_code == 200, r.text
    order: dict[str, object] = r.json()
    assert order["gateway"] == "razorpay" and order["amount"] == 4000 * quantity
    return order


async def command_count(live: Stack) -> int:
    async with live.services.ctx.db.begin() as s:
        return int(await s.scalar(select(func.count()).select_from(Command)) or 0)


def proof(order: dict[str, object], payment_id: str, signature: str) -> dict[str, str]:
    return {
        "razorpay_order_id": str(order["gateway_order_id"]),
        "razorpay_payment_id": payment_id,
        "razorpay_signature": signature,
    }


async def test_order_reaches_razorpay_with_receipt(
    live: Stack, http: httpx.AsyncClient, fake: RazorpayFake
) -> None:
    order = await order_for(live, http, 2)
    remote = fake.orders[str(order["gateway_order_id"])]
    assert remote["amount"] == 8000 and remote["currency"] == "INR"
    assert remote["receipt"] == order["order_id"]
    assert remote["notes"]["machine"] == MID


async def test_webhook_and_verification_dispense_once(
    live: Stack, http: httpx.AsyncClient, fake: RazorpayFake
) -> None:
    order = await order_for(live, http, 1)
    payment_id, signature = fake.pay(str(order["gateway_order_id"]))
    hook = fake.webhook("payment.captured", payment_id=payment_id, event_id="evt_once")
    for _ in range(5):
        r = await http.post("/api/webhooks/razorpay", content=hook.body, headers=hook.headers)
        assert r.status_code == 200
    r = await http.post("/verify-payment", json=proof(order, payment_id, signature))
    assert r.status_code == 200 and r.json()["status"] == "paid"
    assert await command_count(live) == 1


async def test_wrong_amount_is_refunded_not_dispensed(
    live: Stack, http: httpx.AsyncClient, fake: RazorpayFake
) -> None:
    order = await order_for(live, http, 2)
    payment_id, signature = fake.pay(str(order["gateway_order_id"]), amount=100)
    await http.post("/verify-payment", json=proof(order, payment_id, signature))
    assert await command_count(live) == 0
    await live.services.refunds.process_pending()
    assert [(r["payment_id"], r["amount"]) for r in fake.refunds] == [(payment_id, 100)]
    view = (await http.get(f"/api/orders/{order['order_id']}")).json()
    assert view["status"] == "refunded"
    assert view["refund"] == {"amount": 100, "status": "processed", "reason": "wrong_amount"}


async def test_payment_after_lock_expiry_is_refunded(
    live: Stack, http: httpx.AsyncClient, fake: RazorpayFake, clock: FakeClock
) -> None:
    order = await order_for(live, http, 1)
    clock.advance(live.settings.lock_ttl_s + 1)
    await live.services.sweeper.tick()
    payment_id, signature = fake.pay(str(order["gateway_order_id"]))
    r = await http.post("/verify-payment", json=proof(order, payment_id, signature))
    assert r.status_code == 200
    assert await command_count(live) == 0
    await live.services.refunds.process_pending()
    assert fake.refunds[0]["amount"] == 4000
    view = (await http.get(f"/api/orders/{order['order_id']}")).json()
    assert view["status"] == "refunded" and view["dispensed"] == 0


async def test_partial_dispense_refunds_the_rest_pending_then_processed(
    live: Stack, http: httpx.AsyncClient, fake: RazorpayFake
) -> None:
    fake.refunds_pending = True
    order = await order_for(live, http, 3)
    payment_id, signature = fake.pay(str(order["gateway_order_id"]))
    await http.post("/verify-payment", json=proof(order, payment_id, signature))
    [cmd] = await unfinished_commands(live.services)
    await live.services.dispense.apply_result(MID, cmd.id, "failed", 1)
    await live.services.refunds.process_pending()
    view = (await http.get(f"/api/orders/{order['order_id']}")).json()
    assert view["status"] == "refund_pending"
    assert view["refund"] == {"amount": 8000, "status": "pending"}
    [refund_id] = fake.settle_refunds()
    hook = fake.webhook("refund.processed", refund_id=refund_id)
    assert (
        await http.post("/api/webhooks/razorpay", content=hook.body, headers=hook.headers)
    ).status_code == 200
    view = (await http.get(f"/api/orders/{order['order_id']}")).json()
    assert view["status"] == "refunded" and view["dispensed"] == 1
    assert view["refund"] == {"amount": 8000, "status": "processed"}


async def test_silent_machine_times_out_and_refunds(
    live: Stack, http: httpx.AsyncClient, fake: RazorpayFake, clock: FakeClock
) -> None:
    order = await order_for(live, http, 2)
    payment_id, signature = fake.pay(str(order["gateway_order_id"]))
    await http.post("/verify-payment", json=proof(order, payment_id, signature))
    [cmd] = await unfinished_commands(live.services)
    clock.value = cmd.deadline
    await live.services.sweeper.tick()
    await live.services.refunds.process_pending()
    view = (await http.get(f"/api/orders/{order['order_id']}")).json()
    assert view["status"] == "refunded" and view["refund"]["amount"] == 8000


async def test_reconciler_finds_a_payment_nobody_reported(
    live: Stack, http: httpx.AsyncClient, fake: RazorpayFake, clock: FakeClock
) -> None:
    order = await order_for(live, http, 1)
    fake.pay(str(order["gateway_order_id"]))
    assert await live.services.reconciler.run_once() == 0  # the browser may still report it
    clock.advance(GRACE_S)
    assert await live.services.reconciler.run_once() == 1
    assert await command_count(live) == 1
    assert await live.services.reconciler.run_once() == 0


async def test_gateway_down_gives_502_and_no_order_is_paid(
    live: Stack, http: httpx.AsyncClient, fake: RazorpayFake
) -> None:
    code = await display_code(live, MID)
    lock = (await http.post("/api/lock-by-code", json={"code": code, "client_id": CLIENT})).json()
    fake.fail_next(1)
    r = await http.post(
        "/create-order", json={"session_id": lock["session_id"], "client_id": CLIENT, "quantity": 1}
    )
    assert r.status_code == 502 and r.json()["error"]["code"] == "gateway_error"

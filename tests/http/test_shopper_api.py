"""The shopper's HTTP API: contract shapes, errors, and money matching product."""

import httpx
from sqlalchemy import func, select

from api.payments.test_gateway import TestGateway
from schema.models import Command
from tests.http.conftest import CLIENT, display_code
from tests.support.services import unfinished_commands
from tests.support.stack import Stack


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def commands(stack: Stack) -> int:
    async with stack.services.ctx.db.begin() as s:
        return int(await s.scalar(select(func.count()).select_from(Command)) or 0)


async def paid_order(
    stack: Stack, http: httpx.AsyncClient, mid: str, quantity: int = 2
) -> tuple[dict[str, str], dict[str, object]]:
    code = await display_code(stack, mid)
    lock = (await http.post("/api/lock-by-code", json={"code": code, "client_id": CLIENT})).json()
    order = (
        await http.post(
            "/create-order",
            json={"session_id": lock["session_id"], "client_id": CLIENT, "quantity": quantity},
        )
    ).json()
    gateway = stack.services.gateway
    assert isinstance(gateway, TestGateway)
    return gateway.complete_payment(str(order["gateway_order_id"])), order


async def test_public_status_and_lock(stack: Stack, http: httpx.AsyncClient, machine: str) -> None:
    status = (
        await http.get(f"/api/machine/{machine}/public-status", params={"client_id": CLIENT})
    ).json()
    # A machine registered the v1 way has one slot "1" selling a product of its name.
    [slot] = status.pop("slots")
    assert slot["id"] == "1" and slot["product"]["name"] == "Lobby"
    assert slot["price"] == {"amount": 2500, "currency": "INR"}
    assert slot["stock"] == 5 and slot["enabled"] is True
    assert slot["product"]["image_url"] is None
    assert status == {
        "machine_id": machine,
        "name": "Lobby",
        "online": True,
        "mode": "idle",
        "stock": 5,
        "price": {"amount": 2500, "currency": "INR"},
        "locked": False,
        "locked_by_you": False,
        "lock_expires_at": None,
        "code_on_display": True,
    }
    code = await display_code(stack, machine)
    r = await http.post(
        "/api/lock-by-code", json={"code": code, "client_id": CLIENT, "machine_id": machine}
    )
    assert r.status_code == 200
    lock = r.json()
    assert set(lock) == {
        "machine_id",
        "session_id",
        "expires_at",
        "price",
        "max_quantity",
        "slots",
    }
    assert lock["slots"] == [slot]
    assert lock["machine_id"] == machine and lock["max_quantity"] == 5
    mine = (
        await http.get(f"/api/machine/{machine}/public-status", params={"client_id": CLIENT})
    ).json()
    assert (
        mine["locked"] and mine["locked_by_you"] and mine["lock_expires_at"] == lock["expires_at"]
    )
    assert not mine["code_on_display"]  # a code works once: taking the lock hides it
    other = await http.post(
        "/api/lock-by-code", json={"code": code, "client_id": "other-client", "machine_id": machine}
    )
    assert_error(other, 409, "machine_busy")
    assert_error(
        await http.post(
            f"/api/machine/{machine}/unlock",
            json={"client_id": "other-client", "session_id": lock["session_id"]},
        ),
        403,
        "not_lock_owner",
    )
    ok = await http.post(
        f"/api/machine/{machine}/unlock",
        json={"client_id": CLIENT, "session_id": lock["session_id"]},
    )
    assert ok.status_code == 200
    assert await display_code(stack, machine) != code


async def test_bad_input_gets_clear_errors(http: httpx.AsyncClient, machine: str) -> None:
    assert_error(await http.post("/api/lock-by-code", content=b"{nope"), 400, "invalid_request")
    assert_error(await http.post("/api/lock-by-code", json=[1, 2]), 400, "invalid_request")
    assert_error(
        await http.post("/api/lock-by-code", json={"code": 123456, "client_id": CLIENT}),
        400,
        "invalid_request",
    )
    assert_error(
        await http.post("/api/lock-by-code", content=b"x" * 100_000), 413, "payload_too_large"
    )
    assert_error(
        await http.post("/api/lock-by-code", json={"code": "999999", "client_id": CLIENT}),
        400,
        "invalid_code",
    )
    assert_error(await http.get("/api/machine/nope/public-status"), 404, "machine_not_found")
    assert_error(await http.get("/api/machine/bad id!/public-status"), 400, "invalid_request")
    assert_error(await http.get("/api/orders/ord_missing"), 404, "order_not_found")
    assert_error(await http.get("/no-such-page"), 404, "not_found")
    assert_error(await http.get("/create-order"), 405, "method_not_allowed")


async def test_guessing_is_rate_limited(http: httpx.AsyncClient, machine: str) -> None:
    for guess in range(5):
        r = await http.post(
            "/api/lock-by-code",
            json={"code": f"{guess:06d}", "client_id": "guesser-01", "machine_id": machine},
        )
        assert r.status_code in (400, 409)
    limited = await http.post(
        "/api/lock-by-code",
        json={"code": "000009", "client_id": "guesser-01", "machine_id": machine},
    )
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) > 0


async def test_forged_signature_never_dispenses(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    proof, _order = await paid_order(stack, http, machine)
    forged = {**proof, "razorpay_signature": "f" * 64}
    assert_error(await http.post("/verify-payment", json=forged), 400, "invalid_signature")
    assert await commands(stack) == 0


async def test_verification_twice_and_webhooks_dispense_once(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    proof, order = await paid_order(stack, http, machine)
    for _ in range(2):
        r = await http.post("/verify-payment", json=proof)
        assert r.status_code == 200
        assert r.json() == {"order_id": order["order_id"], "status": "paid"}
    gateway = stack.services.gateway
    assert isinstance(gateway, TestGateway)
    hook = gateway.webhook("payment.captured", payment_id=proof["razorpay_payment_id"])
    for _ in range(5):
        r = await http.post("/api/webhooks/razorpay", content=hook.body, headers=hook.headers)
        assert r.status_code == 200
    assert await commands(stack) == 1
    bad = await http.post(
        "/api/webhooks/razorpay",
        content=hook.body,
        headers={**hook.headers, "X-Razorpay-Signature": "0" * 64},
    )
    assert_error(bad, 400, "invalid_signature")
    trigger = await http.post(
        f"/api/machine/{machine}/trigger-dispense",
        json={"order_id": order["order_id"], "client_id": CLIENT},
    )
    assert trigger.status_code == 200
    assert await commands(stack) == 1
    view = (await http.get(f"/api/orders/{order['order_id']}")).json()
    assert view["status"] == "paid" and view["quantity"] == 2 and view["refund"] is None


async def test_trigger_dispense_needs_payment(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    _proof, order = await paid_order(stack, http, machine)
    r = await http.post(
        f"/api/machine/{machine}/trigger-dispense",
        json={"order_id": order["order_id"], "client_id": CLIENT},
    )
    assert_error(r, 402, "payment_required")
    assert await commands(stack) == 0


async def test_order_events_stream(stack: Stack, http: httpx.AsyncClient, machine: str) -> None:
    proof, order = await paid_order(stack, http, machine, quantity=1)
    await http.post("/verify-payment", json=proof)
    cmd = (await unfinished_commands(stack.services))[0]
    seen: list[str] = []
    async with http.stream("GET", f"/api/orders/{order['order_id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                seen.append(line)
                if len(seen) == 1:
                    await stack.services.dispense.apply_result(machine, cmd.id, "succeeded", 1)
    assert '"status": "paid"' in seen[0] and '"status": "dispensed"' in seen[-1]


async def test_openapi_lists_every_route(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/api/lock-by-code",
        "/create-order",
        "/verify-payment",
        "/api/webhooks/razorpay",
        "/api/machine/{mid}/trigger-dispense",
        "/api/orders/{order_id}/events",
        "/api/admin/login",
    ):
        assert path in doc["paths"], path


async def test_test_checkout_failure_is_an_error_not_a_200(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    code = await display_code(stack, machine)
    lock = (await http.post("/api/lock-by-code", json={"code": code, "client_id": CLIENT})).json()
    order = (
        await http.post(
            "/create-order",
            json={"session_id": lock["session_id"], "client_id": CLIENT, "quantity": 1},
        )
    ).json()
    r = await http.post(
        "/api/test-gateway/checkout",
        json={"gateway_order_id": order["gateway_order_id"], "outcome": "fail"},
    )
    assert_error(r, 402, "payment_failed")
    paid = await http.post(
        "/api/test-gateway/checkout",
        json={"gateway_order_id": order["gateway_order_id"], "outcome": "pay"},
    )
    assert paid.status_code == 200 and set(paid.json()) == {
        "razorpay_order_id",
        "razorpay_payment_id",
        "razorpay_signature",
    }
    assert await commands(stack) == 0

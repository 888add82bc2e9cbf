"""Keeping a reservation while checkout is open (POST /api/machine/{mid}/extend).

The server runs on a clock the test moves, so the cap is reached without waiting.
"""

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.clock import FakeClock
from api.services.machines import NewMachine
from api.services.reservation import CHECKOUT_GRACE_S, HOLD_STEP_S, extended_end
from schema.models import Machine, VendSession
from tests.http.conftest import CLIENT
from tests.http.test_shopper_api import assert_error
from tests.support.stack import Stack, running_stack

MID = "lobby-1"
TTL = 300


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(int(time.time()))


@pytest.fixture
async def timed(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, mqtt=False, clock=clock, lock_ttl_s=TTL) as running:
        await running.services.machines.register(
            NewMachine(machine_id=MID, name="Lobby", price_amount=2500, capacity=10, stock=5)
        )
        await running.services.machines.apply_status(MID, {"state": "online", "boot": 1})
        yield running


@pytest.fixture
async def http(timed: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=timed.url, timeout=10) as client:
        yield client


async def lock(stack: Stack, http: httpx.AsyncClient) -> dict[str, Any]:
    async with stack.services.ctx.db.begin() as s:
        code = await s.scalar(select(Machine.display_code).where(Machine.id == MID))
    answer = await http.post(
        "/api/lock-by-code", json={"code": code, "client_id": CLIENT, "machine_id": MID}
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def order(http: httpx.AsyncClient, held: dict[str, Any]) -> dict[str, Any]:
    body = {"session_id": held["session_id"], "client_id": CLIENT, "quantity": 1}
    answer = await http.post("/create-order", json=body)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def extend(
    http: httpx.AsyncClient, held: dict[str, Any], client_id: str = CLIENT, mid: str = MID
) -> httpx.Response:
    body = {"client_id": client_id, "session_id": held["session_id"]}
    return await http.post(f"/api/machine/{mid}/extend", json=body)


async def lock_row(stack: Stack, session_id: str) -> VendSession:
    async with stack.services.ctx.db() as s:
        row = await s.get(VendSession, session_id)
    assert row is not None
    return row


def test_each_ask_keeps_a_minute_more_within_the_cap() -> None:
    created, ttl = 1000, 300
    cap = created + ttl + CHECKOUT_GRACE_S
    assert extended_end(created, created + ttl, created + 10, ttl) == created + ttl  # never earlier
    assert extended_end(created, created + ttl, created + 290, ttl) == created + 290 + HOLD_STEP_S
    assert extended_end(created, created + 450, created + 440, ttl) == cap
    assert extended_end(created, created + 900, created + 800, ttl) == created + 900


async def test_checkout_keeps_the_machine_up_to_the_cap(
    timed: Stack, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    held = await lock(timed, http)
    created = (await lock_row(timed, held["session_id"])).created_at
    # No payment waiting yet: nothing to keep.
    assert_error(await extend(http, held), 409, "checkout_not_open")
    await order(http, held)
    first = await extend(http, held)
    assert first.status_code == 200, first.text
    cap = created + TTL + CHECKOUT_GRACE_S
    assert first.json() == {
        "machine_id": MID,
        "session_id": held["session_id"],
        "expires_at": created + TTL,  # create-order's own renewal is still ahead
        "hold_until": cap,
    }
    ends = []
    while clock.now() + 20 < cap:
        clock.advance(20)
        answer = await extend(http, held)
        assert answer.status_code == 200, answer.text
        ends.append(answer.json()["expires_at"])
        assert answer.json()["hold_until"] == cap
    assert ends == sorted(ends) and max(ends) == cap
    assert (await lock_row(timed, held["session_id"])).expires_at == cap
    status = (await http.get(f"/api/machine/{MID}/public-status")).json()
    assert status["locked"] and status["lock_expires_at"] == cap

    clock.advance(cap - clock.now())
    assert_error(await extend(http, held), 410, "session_expired")


async def test_only_the_lock_owner_keeps_it(timed: Stack, http: httpx.AsyncClient) -> None:
    held = await lock(timed, http)
    await order(http, held)
    assert_error(await extend(http, held, client_id="someone-else-1"), 403, "not_lock_owner")
    assert_error(await extend(http, held, mid="annex-9"), 403, "not_lock_owner")
    assert_error(await extend(http, {"session_id": "ses_nope"}), 403, "not_lock_owner")
    assert_error(await http.post(f"/api/machine/{MID}/extend", json={}), 400, "invalid_request")


async def test_a_payment_after_the_reservation_names_the_reason(
    timed: Stack, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    held = await lock(timed, http)
    created = await order(http, held)
    clock.advance(TTL + 1)  # not swept yet: the order still waits for its payment
    proof = await http.post(
        "/api/test-gateway/checkout",
        json={"gateway_order_id": created["gateway_order_id"], "outcome": "pay"},
    )
    verified = await http.post("/verify-payment", json=proof.json())
    assert verified.status_code == 200, verified.text
    view = (await http.get(f"/api/orders/{created['order_id']}")).json()
    assert view["dispensed"] == 0
    assert view["refund"]["amount"] == 2500 and view["refund"]["reason"] == "late_payment"

"""The same Razorpay webhook delivered at once to two servers on one PostgreSQL.

Razorpay retries any non-2xx for a day and then disables the webhook, so a
duplicate delivery must be a quiet 2xx whatever the timing, and the payment is
still counted once.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from api.services.machines import NewMachine
from schema.models import Command, WebhookEvent
from tests.fakes.razorpay_server import RazorpayFake, razorpay_fake
from tests.http.conftest import display_code
from tests.support.stack import Stack, two_servers
from tests.support.uvicorn_server import client

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = [pytest.mark.postgres]

MACHINES = 6
ROUNDS = 3
COPIES = 4  # deliveries of one event, split between the two servers


@pytest.fixture
async def fake() -> AsyncIterator[RazorpayFake]:
    async with razorpay_fake() as running:
        yield running


@pytest.fixture
async def pair(
    tmp_path: Path, postgresql_url: str, fake: RazorpayFake
) -> AsyncIterator[tuple[Stack, Stack]]:
    async with two_servers(
        tmp_path,
        postgresql_url,
        razorpay_key_id=fake.key_id,
        razorpay_key_secret=fake.key_secret,
        razorpay_webhook_secret=fake.webhook_secret,
        razorpay_base_url=fake.base_url,
    ) as (a, b):
        for n in range(MACHINES):
            mid = f"hook-{n}"
            await a.services.machines.register(
                NewMachine(machine_id=mid, name=mid, price_amount=3000, capacity=50, stock=40)
            )
            await a.services.machines.apply_status(mid, {"state": "online", "boot": 1})
        yield a, b


async def paid_gateway_order(stack: Stack, http: httpx.AsyncClient, mid: str) -> dict[str, str]:
    code = await display_code(stack, mid)
    client = f"shopper-{mid}"
    lock = await http.post("/api/lock-by-code", json={"code": code, "client_id": client})
    assert lock.status_code == 200, lock.text
    order = await http.post(
        "/create-order",
        json={"session_id": lock.json()["session_id"], "client_id": client, "quantity": 1},
    )
    assert order.status_code == 200, order.text
    return dict(order.json())


async def test_one_event_at_once_on_two_servers_is_one_payment_and_all_2xx(
    pair: tuple[Stack, Stack], fake: RazorpayFake
) -> None:
    a, b = pair
    async with (
        client(a.url, timeout=30) as on_a,
        client(b.url, timeout=30) as on_b,
    ):
        statuses: list[tuple[int, str]] = []
        for round_ in range(ROUNDS):
            orders = [await paid_gateway_order(a, on_a, f"hook-{n}") for n in range(MACHINES)]
            hooks = []
            proofs = []
            for n, order in enumerate(orders):
                payment_id, signature = fake.pay(order["gateway_order_id"])
                proofs.append(
                    {
                        "razorpay_order_id": order["gateway_order_id"],
                        "razorpay_payment_id": payment_id,
                        "razorpay_signature": signature,
                    }
                )
                for kind in ("payment.captured", "order.paid"):
                    hooks.append(
                        fake.webhook(
                            kind, payment_id=payment_id, event_id=f"evt_{kind}_{round_}_{n}"
                        )
                    )
            answers = await asyncio.gather(
                *(
                    (on_a if copy % 2 == 0 else on_b).post(
                        "/api/webhooks/razorpay", content=hook.body, headers=hook.headers
                    )
                    for hook in hooks
                    for copy in range(COPIES)
                ),
                *(on_b.post("/verify-payment", json=proof) for proof in proofs),
            )
            statuses += [(r.status_code, r.text) for r in answers]
            # every order ends its vend so the machines take new locks
            async with a.services.ctx.db() as s:
                commands = list((await s.scalars(select(Command))).all())
            for command in commands:
                if command.status not in ("succeeded",):
                    await a.services.dispense.apply_result(
                        command.machine_id, command.id, "succeeded", 1
                    )
    assert [s for s in statuses if s[0] != 200] == []
    bodies = [text for _, text in statuses]
    assert sum('"processed"' in t for t in bodies) == 2 * ROUNDS * MACHINES  # one per event
    async with a.services.ctx.db() as s:
        assert await s.scalar(select(func.count()).select_from(Command)) == ROUNDS * MACHINES
        seen = await s.scalar(select(func.count()).select_from(WebhookEvent))
        assert seen == 2 * ROUNDS * MACHINES

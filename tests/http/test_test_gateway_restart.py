"""A test-gateway payment made before a restart is found and refunded after it."""

from pathlib import Path

import httpx

from api.clock import FakeClock
from api.services.machines import NewMachine
from tests.http.conftest import CLIENT, display_code
from tests.support.stack import running_stack


async def test_a_late_payment_is_refunded_by_the_restarted_server(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_stack(tmp_path, mqtt=False, clock=clock) as stack:
        await stack.services.machines.register(
            NewMachine(machine_id="m1", name="M", price_amount=2500, capacity=5, stock=5)
        )
        await stack.services.machines.apply_status("m1", {"state": "online", "boot": 1})
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
            code = await display_code(stack, "m1")
            lock = await http.post(
                "/api/lock-by-code", json={"code": code, "client_id": CLIENT, "machine_id": "m1"}
            )
            created = await http.post(
                "/create-order",
                json={"session_id": lock.json()["session_id"], "client_id": CLIENT, "quantity": 2},
            )
            order = created.json()
            paid = await http.post(
                "/api/test-gateway/checkout",
                json={"gateway_order_id": order["gateway_order_id"], "outcome": "pay"},
            )
            assert paid.status_code == 200, paid.text
            proof = paid.json()

    # The server restarts; by then the shopper's lock has run out, and the payment
    # nobody verified is found at the (restarted) gateway and refunded in full.
    later = FakeClock(clock.now() + 3600)
    async with running_stack(tmp_path, mqtt=False, clock=later) as stack:
        await stack.services.reconciler.run_once()  # also runs at start: both are idempotent
        await stack.services.refunds.process_pending()
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
            view = (await http.get(f"/api/orders/{order['order_id']}")).json()
            again = await http.post("/verify-payment", json=proof)
    assert view["status"] == "refunded"
    assert view["refund"] == {"amount": 5000, "status": "processed", "reason": "late_payment"}
    assert again.status_code in (200, 402)  # never a second charge or dispense

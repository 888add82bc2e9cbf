"""A simulated machine sells on the whole server: embedded broker, SQLite, real HTTP."""

from pathlib import Path

import httpx

from tests.e2e import flow
from tests.support.stack import Stack, running_stack


async def test_a_simulated_machine_sells_two(tmp_path: Path) -> None:
    async with (
        running_stack(tmp_path, mqtt=True) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        key = await flow.register(stack.services, "sim-e2e-1", stock=5)
        async with flow.fleet(stack.settings.mqtt_port, [("sim-e2e-1", key)]) as fleet:
            vm = fleet.machine("sim-e2e-1")
            await flow.wait_online(stack.services, "sim-e2e-1")
            code = await flow.lcd_code(vm)
            assert vm.lcd[1] == "Rs 25.00"

            paid = await flow.buy(http, code, 2)
            views = await flow.order_ends(http, paid["order_id"])

            final = views[-1]
            assert (final["status"], final["dispensed"], final["amount"], final["refund"]) == (
                "dispensed",
                2,
                5000,
                None,
            )
            assert vm.motor_runs == 2 and vm.controller.stock == 3
            assert (await http.get("/api/machine/sim-e2e-1/public-status")).json()["stock"] == 3
            # the code was used up: the display shows a fresh one once the thanks are over
            assert await flow.lcd_code(vm, other_than=code) != code
            await vm.wait_for(lambda: vm.controller.version > 0 and vm.state == "idle")
            await assert_code_single_use(http, code)


async def assert_code_single_use(http: httpx.AsyncClient, code: str) -> None:
    again = await http.post("/api/lock-by-code", json={"code": code, "client_id": "e2e-late-2"})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_code"


async def test_failing_and_jammed_machines_refund(tmp_path: Path) -> None:
    async with (
        running_stack(tmp_path, mqtt=True) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        port = stack.settings.mqtt_port
        keys = {mid: await flow.register(stack.services, mid, stock=4) for mid in ("dud", "jam")}
        async with (
            flow.fleet(port, [("dud", keys["dud"])], fail_rate=1.0) as duds,
            flow.fleet(port, [("jam", keys["jam"])], jam_rate=1.0, service_s=60) as jams,
        ):
            for mid, vm in (("dud", duds.machine("dud")), ("jam", jams.machine("jam"))):
                await flow.wait_online(stack.services, mid)
                paid = await flow.buy(http, await flow.lcd_code(vm), 2, client_id=f"e2e-{mid}-1")
                final = (await flow.order_ends(http, paid["order_id"]))[-1]
                assert final["dispensed"] == 0, final
                assert final["status"] in ("refund_pending", "refunded"), final
                assert final["refund"]["amount"] == 5000
                await refunded(stack, http, paid["order_id"])
                status = (await http.get(f"/api/machine/{mid}/public-status")).json()
                assert status["stock"] == 4 and not status["locked"]

            jammed = jams.machine("jam")
            assert jammed.motor_runs == 1 and jammed.state == "error"
            assert duds.machine("dud").motor_runs == 1  # a unit that does not fall ends the order
            # the jammed machine tells the server it is out of order until serviced
            await flow.wait_status(
                stack.services, "jam", lambda s: s["mode"] == "error", "reported in error"
            )


async def refunded(stack: Stack, http: httpx.AsyncClient, order_id: str) -> None:
    await stack.services.refunds.process_pending()
    view = (await http.get(f"/api/orders/{order_id}")).json()
    assert view["status"] == "refunded" and view["refund"] == {
        "amount": 5000,
        "status": "processed",
    }

"""The same sale on the production shape: PostgreSQL (migrated) and Mosquitto."""

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from schema.models import Command
from tests.e2e import flow
from tests.e2e.external import external_stack

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]


async def test_sale_and_refund_on_postgres_and_mosquitto(
    tmp_path: Path, postgresql_url: str
) -> None:
    machines = [("pg-lobby", 5), ("pg-dud", 3)]
    async with (
        external_stack(tmp_path, postgresql_url, machines) as ext,
        httpx.AsyncClient(base_url=ext.stack.url, timeout=10) as http,
        flow.fleet(ext.mqtt_port, [("pg-lobby", ext.keys["pg-lobby"])]) as good,
        flow.fleet(ext.mqtt_port, [("pg-dud", ext.keys["pg-dud"])], fail_rate=1.0) as bad,
    ):
        await flow.bridge_up(ext.stack)
        assert (await http.get("/healthz")).json() == {"status": "ok", "mqtt_connected": True}
        services = ext.stack.services
        vm = good.machine("pg-lobby")
        await flow.wait_online(services, "pg-lobby")
        code = await flow.lcd_code(vm)

        paid = await flow.buy(http, code, 2)
        views = await flow.order_ends(http, paid["order_id"])
        assert [v["status"] for v in views][-1] == "dispensed"
        assert views[-1]["dispensed"] == 2 and vm.motor_runs == 2
        assert (await services.views.public_status("pg-lobby", ""))["stock"] == 3
        assert await flow.lcd_code(vm, other_than=code) != code

        dud = bad.machine("pg-dud")
        await flow.wait_online(services, "pg-dud")
        failed = await flow.buy(http, await flow.lcd_code(dud), 1, client_id="e2e-pg-2")
        final = (await flow.order_ends(http, failed["order_id"]))[-1]
        assert final["dispensed"] == 0 and final["refund"]["amount"] == 2500, final
        await services.refunds.process_pending()
        view = (await http.get(f"/api/orders/{failed['order_id']}")).json()
        assert view["status"] == "refunded" and view["refund"]["status"] == "processed"

        # one command per order, each cleared from the broker once finished
        async with services.ctx.db() as s:
            commands = (await s.scalars(select(Command).order_by(Command.machine_id))).all()
        assert [(c.machine_id, c.status) for c in commands] == [
            ("pg-dud", "failed"),
            ("pg-lobby", "succeeded"),
        ]

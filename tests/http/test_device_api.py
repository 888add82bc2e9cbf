"""The machines' HTTP fallback: API-key auth, status, idempotent confirm, errors."""

import httpx
from sqlalchemy import select

from api.services.machines import NewMachine
from schema.models import DeviceEvent
from tests.http.test_shopper_api import assert_error, paid_order
from tests.support.stack import Stack


async def test_fallback_confirms_once(stack: Stack, http: httpx.AsyncClient) -> None:
    _, key = await stack.services.machines.register(
        NewMachine(machine_id="kiosk", name="Kiosk", price_amount=1000, capacity=5, stock=5)
    )
    await stack.services.machines.apply_status("kiosk", {"state": "online", "boot": 1})
    auth = {"Authorization": f"Bearer {key}"}
    assert_error(await http.get("/api/machine/kiosk/status"), 401, "unauthorized")
    assert_error(
        await http.get("/api/machine/kiosk/status", headers={"Authorization": "Bearer svk_wrong"}),
        401,
        "unauthorized",
    )
    proof, order = await paid_order(stack, http, "kiosk", quantity=2)
    assert (await http.post("/verify-payment", json=proof)).status_code == 200
    status = (await http.get("/api/machine/kiosk/status", headers=auth)).json()
    assert status["desired"]["lock"] is not None and status["desired"]["display"] is None
    [command] = status["commands"]
    assert command["quantity"] == 2 and command["order"] == order["order_id"]
    for expected in (True, False):
        r = await http.post(
            "/api/machine/kiosk/confirm",
            headers=auth,
            json={"cmd_id": command["cmd_id"], "dispensed": 2},
        )
        assert r.status_code == 200 and r.json()["applied"] is expected
    view = (await http.get(f"/api/orders/{order['order_id']}")).json()
    assert view["status"] == "dispensed" and view["dispensed"] == 2
    assert_error(
        await http.post(
            "/api/machine/kiosk/confirm",
            headers=auth,
            json={"cmd_id": "cmd_unknown", "dispensed": 1},
        ),
        404,
        "command_not_found",
    )
    r = await http.post(
        "/api/machine/kiosk/report-error",
        headers=auth,
        json={"code": "E_MOTOR", "detail": "<b>stalled</b>"},
    )
    assert r.status_code == 200
    async with stack.services.ctx.db.begin() as s:
        event = await s.scalar(select(DeviceEvent).where(DeviceEvent.machine_id == "kiosk"))
    assert event is not None and event.code == "E_MOTOR" and event.type == "error"
    await stack.services.machines.revoke_key("kiosk")
    assert_error(await http.get("/api/machine/kiosk/status", headers=auth), 401, "unauthorized")

"""An operator's day on the whole server: register a machine on the dashboard, watch it
come online, restock it and see the machine apply the new settings."""

import html
import re
from pathlib import Path

import httpx

from tests.admin.support import admin_client, post_form, wait_fleet_row
from tests.e2e import flow
from tests.support.stack import running_stack

KEY = re.compile(r'<code id="api-key" class="secret">([^<]+)</code>')
VERSIONS = re.compile(r"desired (\d+) · reported (\d+|-) ·")
MID = "dash-e2e-1"


async def versions(client: httpx.AsyncClient) -> tuple[int, int | None, str]:
    page = await client.get(f"/admin/machines/{MID}")
    assert page.status_code == 200, page.text
    found = VERSIONS.search(page.text)
    assert found is not None, "the machine page shows no settings versions"
    reported = None if found.group(2) == "-" else int(found.group(2))
    return int(found.group(1)), reported, page.text


async def test_register_watch_online_restock(tmp_path: Path) -> None:
    async with running_stack(tmp_path, mqtt=True) as stack, admin_client(stack) as admin:
        answer = await post_form(
            admin,
            "/admin/machines/new",
            "/admin/machines/new",
            {
                "machine_id": MID,
                "name": "Dashboard lobby",
                "location": "Atrium",
                "price": "30",
                "capacity": "12",
                "stock": "2",
            },
        )
        assert answer.status_code == 201, answer.text
        shown = KEY.search(answer.text)
        assert shown is not None, "the registration page shows no key"
        api_key = html.unescape(shown.group(1))

        async with flow.fleet(stack.settings.mqtt_port, [(MID, api_key)]) as fleet:
            vm = fleet.machine(MID)
            row = await wait_fleet_row(admin, MID, lambda r: r["online"], within_s=flow.WAIT_S)
            assert (row["status"], row["stock"], row["capacity"]) == ("online", 2, 12)
            assert row["price"] == "₹30.00"
            # desired reaches the machine a moment after its online status reaches us
            await vm.wait_for(lambda: vm.lcd[1] == "Rs 30.00", within=flow.WAIT_S)

            before, _, _ = await versions(admin)
            restocked = await post_form(
                admin, f"/admin/machines/{MID}", f"/admin/machines/{MID}/stock", {"stock": "12"}
            )
            assert restocked.status_code == 303, restocked.text
            assert restocked.headers["location"] == f"/admin/machines/{MID}?done=stock"

            await vm.wait_for(lambda: vm.controller.stock == 12, flow.WAIT_S)

            async def applied() -> tuple[int, int | None, str] | None:
                desired, reported, text = await versions(admin)
                return (desired, reported, text) if desired == reported else None

            desired, reported, text = await flow.until(applied, "the machine to apply the restock")
            assert desired > before and reported == desired == vm.controller.version
            assert '<span class="pill online">applied</span>' in text
            assert '<span id="stock-count">12/12</span>' in text
            row = await wait_fleet_row(admin, MID, lambda r: r["stock"] == 12)
            assert row["applied"] and row["online"]

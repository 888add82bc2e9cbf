"""The dashboard in Debian's Chromium: log in, register a machine, restock it, watch the fleet
update live, export orders.  Screenshots go to test-artifacts/ (and to docs/img/ when
SMARTVEND_DOC_SCREENSHOTS=1)."""

import csv
import io
import json
from pathlib import Path

import anyio
import pytest
from playwright.async_api import Browser, expect

from api.services.container import Services
from tests.admin.browser import shot
from tests.admin.support import admin_stack, register, vend
from tests.support.stack import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "device" / "firmware" / "config.example.json"
XSS = "<script>alert(1)</script>"


async def seed(services: Services) -> None:
    """A small fleet with sales, telemetry and events, so the pages have something to show."""
    await register(services, "lobby-1", name="Lobby", stock=9, capacity=12)
    await register(services, "gym-2", name="Gym", stock=4, capacity=10)
    await register(services, "xss", name=XSS, stock=2, online=False)
    sold = await vend(services, "lobby-1", 2)
    jammed = await vend(services, "gym-2", 3, dispensed=1, client_id="client-00002")
    await services.feedback.give(sold, "client-00001", "up", "Quick, and the drinks were cold")
    await services.feedback.give(jammed, "client-00002", "down", "Only one bar came out")
    now = services.ctx.clock.now()
    for i in range(30):
        await services.machines.record_telemetry(
            "lobby-1", {"ts": now - 3600 + i * 120, "rssi": -60 - i % 7, "temp_c": 24 + i % 3}
        )
    await services.machines.record_event(
        "gym-2", {"type": "jam", "code": "E12", "detail": "motor stalled", "ts": now}
    )


async def test_operator_day(tmp_path: Path, browser: Browser) -> None:
    async with admin_stack(tmp_path) as stack:
        await seed(stack.services)
        context = await browser.new_context(
            base_url=stack.url, accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        page = await context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))

        await page.goto("/admin/orders")
        await expect(page.get_by_role("heading", name="Operator login")).to_be_visible()
        await shot(page, "login")
        await page.get_by_label("Username").fill("admin")
        await page.get_by_label("Password").fill(ADMIN_PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("heading", name="Orders")).to_be_visible()

        await page.get_by_role("link", name="Add machine").click()
        await page.get_by_label("Machine id").fill("vm-1")
        await page.get_by_label("Name").fill("Station West")
        await page.get_by_label("Location").fill("Platform 2")
        await page.get_by_label("Price (₹)").fill("30")
        await page.get_by_label("Capacity").fill("12")
        await page.get_by_label("Stock now").fill("2")
        await page.get_by_role("button", name="Register").click()
        key = (await page.locator("#api-key").inner_text()).strip()
        assert key.startswith("svk_")
        await expect(page.locator("figure.qr svg")).to_be_visible()
        await shot(page, "register")
        async with page.expect_download() as download_info:
            await page.locator("#download-config").click()
        download = await download_info.value
        config = json.loads(await anyio.Path(await download.path()).read_text(encoding="utf-8-sig"))
        assert config["machine_id"] == "vm-1" and config["api_key"] == key
        assert set(config) == set(json.loads(await anyio.Path(EXAMPLE_CONFIG).read_text()))

        await page.get_by_role("link", name="Go to Station West").click()
        await expect(page.locator("#stock-count")).to_have_text("2/12")
        assert key not in await page.content()
        await page.get_by_label("Stock after restocking").fill("12")
        await page.get_by_role("button", name="Set stock").click()
        await expect(page.get_by_role("status")).to_have_text("Stock updated.")
        await expect(page.locator("#stock-count")).to_have_text("12/12")
        await page.goto("/admin/machines/lobby-1")
        await shot(page, "machine")

        await page.goto("/admin")
        await expect(page.locator("#live")).to_have_text("live")
        row = page.locator('tr[data-mid="vm-1"]')
        await expect(row.locator(".count")).to_have_text("12/12")
        await stack.services.machines.set_stock("vm-1", 3)  # a restock seen by another admin
        await expect(row.locator(".count")).to_have_text("3/12")
        await expect(row.locator(".pill.warn")).to_have_text("low")
        await expect(page.locator('tr[data-mid="xss"] a')).to_have_text(XSS)
        await shot(page, "fleet")

        await page.goto("/admin/orders")
        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="Export CSV").click()
        download = await download_info.value
        rows = list(
            csv.DictReader(
                io.StringIO(await anyio.Path(await download.path()).read_text(encoding="utf-8-sig"))
            )
        )
        assert sorted(r["machine_id"] for r in rows) == ["gym-2", "lobby-1"]
        assert {r["status"] for r in rows} <= {"dispensed", "refund_pending", "refunded"}
        await shot(page, "orders")
        await page.get_by_role("link", name=rows[0]["order_id"]).click()
        await expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
        await shot(page, "order")

        await page.goto("/admin/reports")
        await expect(page.locator("svg.chart").first).to_be_visible()
        await shot(page, "reports")
        await page.goto("/admin/alerts")
        await page.get_by_role("button", name="Run checks now").click()
        await expect(page.get_by_role("status")).to_contain_text("new alert(s)")
        await shot(page, "alerts")
        await page.goto("/admin/integrators")
        await page.get_by_label("Username").fill("reports-team")
        await page.get_by_role("button", name="Create").click()
        await expect(page.locator("#integrator-password")).to_be_visible()
        await shot(page, "integrator")
        assert dialogs == []
        await context.close()

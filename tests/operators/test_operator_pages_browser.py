"""The users, audit and webhooks pages on a phone-sized Chromium."""

import re
from pathlib import Path

import anyio
import pytest
from playwright.async_api import Browser, expect

from tests.admin.browser import phone, shot
from tests.admin.conftest import browser  # noqa: F401 (the fixture)
from tests.admin.support import admin_stack, register
from tests.admin.test_operator_phone import fits, log_in
from tests.operators.support import PASSWORD

pytestmark = pytest.mark.browser


async def test_users_and_audit_on_a_phone(tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    async with admin_stack(tmp_path) as stack:
        services = stack.services
        await register(services, "lobby-1", name="Lobby")
        await services.machines.set_price("lobby-1", 3000, by="admin", reason="festival week")
        context = await phone(browser, stack.url)
        page = await context.new_page()
        await log_in(page, "/admin/users")

        await page.get_by_label("Username").fill("ravi")
        await page.locator('form[action="/admin/users"] input[name="password"]').fill("short")
        await page.get_by_label("Role").last.select_option("restocker")
        await page.get_by_role("button", name="Create user").click()
        await expect(page.locator("#e-password")).to_have_text("At least 10 characters.")
        await expect(page.get_by_label("Username")).to_have_value("ravi")

        await page.locator('form[action="/admin/users"] input[name="password"]').fill(PASSWORD)
        await page.get_by_role("button", name="Create user").click()
        await expect(page.get_by_role("status")).to_have_text("User created.")
        card = page.locator("#user-ravi")
        await expect(card).to_contain_text("restocker · every location")

        await page.locator("#user-admin").get_by_role("button", name="Disable").click()
        await expect(page.locator("#e-user-admin")).to_contain_text("last active admin")
        await card.get_by_role("button", name="Disable").click()
        await expect(page.get_by_role("status")).to_contain_text("User disabled")
        await expect(page.locator("#user-ravi .pill")).to_have_text("disabled")
        await fits(page)
        await shot(page, "users-phone")

        await page.goto("/admin/audit")
        entries = page.locator("#audit-entries li")
        await expect(entries.first).to_contain_text("user changed")
        await expect(page.locator("#audit-entries")).to_contain_text("Reason: festival week")
        await page.get_by_label("User", exact=True).fill("admin")
        await page.get_by_label("Action").select_option("price_changed")
        await page.get_by_role("button", name="Filter").click()
        await page.wait_for_url(re.compile(r"action=price_changed"))
        await expect(entries).to_have_count(1)
        await expect(entries.first).to_contain_text("price ₹25.00 → price ₹30.00")
        await fits(page)
        await shot(page, "audit-phone")
        async with page.expect_download() as download_info:
            await page.locator("#export-csv").click()
        download = await download_info.value
        data = await anyio.Path(await download.path()).read_bytes()
        assert data.startswith("\ufeff".encode()) and b"festival week" in data

        await page.goto("/admin/webhooks")
        await page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
        await page.get_by_role("button", name="Add webhook").click()
        await expect(page.locator("#webhook-secret")).to_contain_text("whsec_")
        await page.get_by_role("button", name="Send a test event").click()
        await expect(page.get_by_role("status")).to_contain_text("Test event queued")
        await expect(page.locator("#delivery-log")).to_contain_text("pending")
        await fits(page)
        await shot(page, "webhooks-phone")
        await context.close()

"""The dashboard on a phone-sized Chromium: refunds that read right, feedback operators see."""

import csv
import io
import re
from pathlib import Path

import anyio
import pytest
from playwright.async_api import Browser, Page, expect

from tests.admin.browser import page_width, phone, shot
from tests.admin.support import admin_stack, register, vend
from tests.support.stack import ADMIN_PASSWORD

pytestmark = pytest.mark.browser


async def log_in(page: Page, target: str) -> None:
    await page.goto(target)
    await page.get_by_label("Username").fill("admin")
    await page.get_by_label("Password").fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(re.compile(re.escape(target) + "$"))


async def fits(page: Page) -> None:
    assert await page_width(page) <= 390, f"{page.url} is wider than the phone"


async def test_a_manual_refund_is_confirmed_and_changes_money_not_history(
    tmp_path: Path, browser: Browser
) -> None:
    async with admin_stack(tmp_path) as stack:
        services = stack.services
        await register(services, "lobby-1", name="Lobby", stock=9)
        order_id = await vend(services, "lobby-1", 2)  # ₹50.00, both came out
        context = await phone(browser, stack.url)
        page = await context.new_page()
        await log_in(page, f"/admin/orders/{order_id}")

        summary = page.locator("#refund-summary")
        await expect(summary).to_have_text(
            "Paid ₹50.00 · refunded so far ₹0.00 · can still refund ₹50.00"
        )
        for choice in await page.locator('input[name="amount_choice"]').all():
            await expect(choice).not_to_be_checked()  # nothing is chosen for the operator
        await page.get_by_role("button", name="Review refund").click()
        await expect(page.locator("#refund-error")).to_have_text("Choose how much to refund.")

        await page.get_by_label("Another amount (₹)").check()
        await page.get_by_label("Another amount in rupees").fill("60")
        await page.get_by_role("button", name="Review refund").click()
        await expect(page.locator("#refund-error")).to_have_text("Refund from ₹0.01 to ₹50.00.")
        await expect(page.get_by_label("Another amount in rupees")).to_have_value("60")

        await page.get_by_label("Another amount in rupees").fill("10")
        await page.get_by_role("button", name="Review refund").click()
        await expect(page.locator("#refund-error")).to_contain_text("Say why you refund")
        await page.get_by_label("Reason (kept in the audit trail)").fill("one was warm")
        await page.get_by_role("button", name="Review refund").click()
        await expect(page.get_by_role("heading", name="Refund ₹10.00?")).to_be_visible()
        await expect(page.locator("#refund-reason")).to_have_text("one was warm")
        await expect(page.locator("dl.facts")).to_contain_text("Refunded so far₹0.00")
        await fits(page)
        await shot(page, "refund-confirm")
        assert (await services.orders.view(order_id))["refund"] is None  # not before confirming
        await page.get_by_role("button", name="Confirm refund of ₹10.00").click()
        await expect(page.get_by_role("status")).to_contain_text("Refund recorded")
        await expect(page.locator("#order-status")).to_have_text("dispensed")
        await expect(summary).to_have_text(
            "Paid ₹50.00 · refunded so far ₹10.00 · can still refund ₹40.00"
        )

        await expect(page).to_have_url(re.compile(rf"/admin/orders/{order_id}$"))  # no ?done=
        refunds = page.locator("#refunds-card ul.refunds li")
        await expect(refunds).to_have_count(1)
        await expect(refunds.first).to_contain_text("pending")
        await services.refunds.process_pending()
        await expect(refunds.first).to_contain_text("processed")  # live, without a reload
        await page.reload()
        await expect(page.get_by_text("Refund recorded")).to_have_count(0)  # said once only
        await expect(page.locator("#refund-notes")).to_contain_text("one was warm")
        await page.get_by_label("All that is left (₹40.00)").check()
        await page.get_by_label("Reason (kept in the audit trail)").fill("the rest too")
        await page.get_by_role("button", name="Review refund").click()
        await expect(page.locator("dl.facts")).to_contain_text("Refunded so far₹10.00")
        await page.get_by_role("button", name="Confirm refund of ₹40.00").click()
        await expect(summary).to_have_text(
            "Paid ₹50.00 · refunded so far ₹50.00 · can still refund ₹0.00"
        )
        await expect(page.get_by_text("The whole payment is refunded.")).to_be_visible()
        await fits(page)
        await shot(page, "order-refunds")
        view = await services.orders.view(order_id)
        assert (view["status"], view["dispensed"], view["refund"]["amount"]) == (
            "dispensed",
            2,
            5000,
        )
        await context.close()


async def test_operators_see_feedback_on_the_order_machine_reports_and_fleet(
    tmp_path: Path, browser: Browser
) -> None:
    async with admin_stack(tmp_path) as stack:
        services = stack.services
        await register(services, "lobby-1", name="Lobby", stock=9)
        liked = await vend(services, "lobby-1", 1, client_id="client-00001")
        disliked = await vend(services, "lobby-1", 1, client_id="client-00002")
        await services.feedback.give(liked, "client-00001", "up", "Quick and cold")
        await services.feedback.give(disliked, "client-00002", "down", "<b>warm</b> drink")
        await vend(services, "lobby-1", 1, client_id="client-00003")  # not rated
        context = await phone(browser, stack.url)
        page = await context.new_page()
        await log_in(page, f"/admin/orders/{liked}")
        await expect(page.locator("#order-feedback")).to_contain_text("thumbs up “Quick and cold”")

        await page.goto("/admin/machines/lobby-1")
        await expect(page.locator("#feedback-share")).to_have_text(
            "50% thumbs up (1 up, 1 down) over the last 30 days"
        )
        items = page.locator("#feedback-list li")
        await expect(items).to_have_count(2)
        await expect(items.first).to_contain_text("“<b>warm</b> drink”")  # text, never markup
        await fits(page)
        await shot(page, "machine-feedback")

        await page.goto("/admin/reports")
        await expect(page).to_have_title("Reports · SmartVend admin")
        await expect(page.locator("#report-totals")).to_contain_text("1 up · 1 down")
        await fits(page)
        await page.goto("/admin")
        await expect(page.locator('tr[data-mid="lobby-1"] td.ratings')).to_have_text(
            "1 up · 1 down"
        )
        await context.close()


async def test_forms_explain_each_field_in_rupees_and_keep_what_was_typed(
    tmp_path: Path, browser: Browser
) -> None:
    async with admin_stack(tmp_path) as stack:
        context = await phone(browser, stack.url)
        page = await context.new_page()
        await log_in(page, "/admin/machines/new")
        await page.get_by_label("Machine id").fill("vm 1")
        await page.get_by_label("Name").fill("Station West")
        await page.get_by_label("Price (₹)").fill("0.50")
        await page.get_by_label("Capacity").fill("12")
        await page.get_by_label("Stock now").fill("20")
        await page.get_by_role("button", name="Register").click()
        await expect(page.locator("#e-machine_id")).to_have_text(
            "Use 1 to 32 letters, digits, _ or -, as printed on the machine."
        )
        await expect(page.locator("#e-price")).to_have_text(
            "The price must be from ₹1.00 to ₹1,00,000.00."
        )
        await expect(page.locator("#e-stock")).to_have_text(
            "Stock must be a whole number from 0 to 12."
        )
        await expect(page.locator("#e-name")).to_be_empty()
        await expect(page.get_by_label("Price (₹)")).to_have_attribute("aria-invalid", "true")
        await expect(page.get_by_label("Name")).to_have_value("Station West")  # kept
        await fits(page)
        await shot(page, "register-errors")

        await page.get_by_label("Machine id").fill("vm-1")
        await page.get_by_label("Price (₹)").fill("₹1,250")
        await page.get_by_label("Stock now").fill("12")
        await page.get_by_role("button", name="Register").click()
        await expect(page.locator("#api-key")).to_be_visible()
        await page.reload()  # the browser sends the form again
        await expect(page.locator("#e-machine_id")).to_contain_text(
            "A machine with the id vm-1 is already registered. If you just registered it "
            "and reloaded the page, it is done"
        )
        await expect(page.get_by_label("Name")).to_have_value("Station West")
        await page.locator("#taken-link").click()
        await expect(page.locator("#stock-count")).to_have_text("12/12")
        await expect(page.locator("dl.facts")).to_contain_text("₹1,250.00")

        await page.get_by_label("Stock after restocking").fill("99")
        await page.get_by_role("button", name="Set stock").click()
        await expect(page.locator("#e-stock")).to_have_text(
            "Stock must be a whole number from 0 to 12."
        )
        await expect(page.get_by_label("Stock after restocking")).to_have_value("99")
        await page.get_by_label("Price (₹)").fill("abc")
        await page.get_by_role("button", name="Set price").click()
        await expect(page.locator("#e-price")).to_have_text(
            "The price must be an amount in rupees, like 25 or 25.50."
        )
        await fits(page)
        await context.close()


async def test_charts_say_when_there_is_nothing_and_name_their_units(
    tmp_path: Path, browser: Browser
) -> None:
    async with admin_stack(tmp_path) as stack:
        services = stack.services
        await register(services, "lobby-1", name="Lobby", stock=9)
        now = services.ctx.clock.now()
        for i in range(12):
            await services.machines.record_telemetry(
                "lobby-1",
                {"ts": now - 3600 + i * 300, "rssi": -55, "free_mem": 100_352, "uptime_s": 7500},
            )
        context = await phone(browser, stack.url)
        page = await context.new_page()
        await log_in(page, "/admin/machines/lobby-1")
        sales = page.locator("section", has=page.get_by_role("heading", name="Sales, last 14 days"))
        await expect(sales.locator(".chart-empty")).to_have_text(
            "No sales in the last 14 days yet."
        )
        await expect(sales.locator("svg.chart")).to_have_count(0)
        captions = page.locator("figure.telemetry figcaption")
        await expect(captions).to_have_text(
            [
                "Signal strength: latest -55 dBm",
                "Free memory: latest 98 KiB",
                "Uptime: latest 2 h 5 min",
            ]
        )
        chart = page.locator("figure.telemetry svg.chart").first
        card = page.locator("figure.telemetry").first
        chart_box, card_box = await chart.bounding_box(), await card.bounding_box()
        assert chart_box is not None and card_box is not None
        assert chart_box["width"] >= card_box["width"] - 1  # the chart takes its card's width
        await fits(page)
        await page.goto("/admin/reports")
        await expect(page.locator(".chart-empty").first).to_have_text("No sales in this period.")
        await vend(services, "lobby-1", 1)
        await page.reload()
        await expect(page.locator("svg.chart").first).to_be_visible()
        # Labels stay readable on a phone: at least 10 px of real text, today's bar named.
        today = page.locator("svg.chart").first.locator('text[font-weight="700"]')
        await expect(today).to_have_count(1)
        height = await today.evaluate("t => t.getBoundingClientRect().height")
        assert height >= 10, height
        await shot(page, "reports-phone")
        await context.close()


async def test_tables_fit_the_phone_and_exports_speak_rupees(
    tmp_path: Path, browser: Browser
) -> None:
    async with admin_stack(tmp_path) as stack:
        services = stack.services
        await register(services, "lobby-1", name="Lobby by the lifts", stock=9)
        await register(services, "gym-2", name="Gym" + "Snacks" * 10, stock=9)
        sold = await vend(services, "lobby-1", 2)
        jammed = await vend(services, "gym-2", 2, dispensed=1, client_id="client-00002")
        await stack.runtime.alert_sender.run_once()
        context = await phone(browser, stack.url)
        page = await context.new_page()
        await log_in(page, "/admin/orders")
        row = page.locator("table.grid tbody tr", has=page.get_by_role("link", name=sold))
        await expect(row).to_contain_text("Lobby by the lifts")  # the machine's name
        await fits(page)
        # Below 600 px each order is a card: cells stacked, each named.
        status = row.locator('td[data-label="Status"]')
        assert await status.evaluate("td => getComputedStyle(td).display") == "block"
        label = await status.evaluate("td => getComputedStyle(td, '::before').content")
        assert label == '"Status"'
        await expect(page.locator("table.grid thead")).not_to_be_in_viewport()
        await shot(page, "orders-phone")
        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="Export CSV").click()
        text = await anyio.Path(await (await download_info.value).path()).read_text(
            encoding="utf-8-sig"
        )
        rows = {r["order_id"]: r for r in csv.DictReader(io.StringIO(text))}
        assert (rows[sold]["amount"], rows[sold]["currency"], rows[sold]["amount_paise"]) == (
            "50.00",
            "INR",
            "5000",
        )
        assert rows[sold]["machine_name"] == "Lobby by the lifts"
        assert (rows[jammed]["refunded"], rows[jammed]["refunded_paise"]) == ("25.00", "2500")

        for path in ("/admin", "/admin/machines/gym-2", "/admin/reports", "/admin/integrators"):
            await page.goto(path)
            await fits(page)
        await page.goto("/admin/alerts")
        await fits(page)
        await page.get_by_role("link", name=f"Order {jammed}").click()  # order ids are links
        await expect(page.get_by_role("heading", name=re.compile("Order"))).to_contain_text(jammed)
        await context.close()

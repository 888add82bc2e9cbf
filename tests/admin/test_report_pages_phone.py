"""The sales report and a machine's alert threshold on a phone-sized Chromium."""

import csv
import datetime as dt
import io
import re
from pathlib import Path

import anyio
import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from api.clock import FakeClock, LocalCalendar
from api.services.machines import NewMachine
from schema.models import Alert, AuditEntry
from tests.admin.browser import phone, shot
from tests.admin.support import admin_stack, vend
from tests.admin.test_operator_phone import fits, log_in

pytestmark = pytest.mark.browser

IST = LocalCalendar("Asia/Kolkata")
WED = dt.date(2027, 1, 13)


async def _machine(stack_services: object, mid: str, name: str, location: str) -> None:
    from api.services.container import Services

    assert isinstance(stack_services, Services)
    await stack_services.machines.register(
        NewMachine(
            machine_id=mid, name=name, location=location, price_amount=2500, capacity=10, stock=9
        )
    )
    await stack_services.machines.apply_status(mid, {"state": "online", "boot": 1, "fw": "1"})


async def test_the_week_report_reads_on_a_phone_with_today_marked(
    tmp_path: Path, browser: Browser
) -> None:
    clock = FakeClock(IST.midnight(WED) + 10 * 3600)
    async with admin_stack(tmp_path, clock=clock) as stack:
        services = stack.services
        await _machine(services, "lobby-1", "Lobby by the lifts", "Tower A")
        await _machine(services, "gym-2", "Gym", "Tower B")
        sold = await vend(services, "lobby-1", 2)
        await vend(services, "gym-2", 1, client_id="client-00002")
        clock.advance(86_400)  # Thursday: Wednesday's sales and today's
        await vend(services, "lobby-1", 1, client_id="client-00003")
        await services.manual_refunds.refund(sold, 500, by="admin", reason="one was warm")
        context = await phone(browser, stack.url)
        page = await context.new_page()
        await log_in(page, "/admin/reports")
        await expect(
            page.get_by_role("heading", name="Sales, 11 Jan 2027 to 17 Jan 2027")
        ).to_be_visible()
        await expect(page.locator("#report-totals")).to_contain_text("₹100.00 (4 units)")
        chart = page.locator("svg.chart").first
        today = chart.locator('text[font-weight="700"]')
        await expect(today).to_have_text("today")  # Thursday's bar, in the middle of the week
        height = await today.evaluate("t => t.getBoundingClientRect().height")
        assert height >= 10, height  # readable on a phone
        await expect(chart.locator("rect")).to_have_count(3)  # Wed: lobby + gym, Thu: lobby
        # Below 600 px each row is a card: cells stacked, each named.
        rows = page.locator("#report-table tbody tr")
        await expect(rows).to_have_count(2)
        net = rows.first.locator('td[data-label="Net"]')
        await expect(net).to_have_text("₹70.00")  # ₹75 for the lobby, ₹5 refunded by hand
        assert await net.evaluate("td => getComputedStyle(td).display") == "block"
        label = await net.evaluate("td => getComputedStyle(td, '::before').content")
        assert label == '"Net"'
        await fits(page)
        await shot(page, "sales-report-phone")

        await page.locator('select[name="group"]').select_option("location")
        await page.locator('select[name="period"]').select_option("day")
        await page.get_by_role("button", name="Show").click()
        await expect(page.get_by_role("heading", name="Sales, Thu 14 Jan 2027")).to_be_visible()
        places = page.locator("#report-table tbody tr")
        await expect(places).to_have_count(2)  # a location that sold nothing is listed too
        await expect(places.last.locator('td[data-label="Net"]')).to_have_text("₹0.00")
        await expect(
            page.locator("svg.chart").first.locator('text[font-weight="700"]')
        ).to_have_text("now")
        await page.get_by_role("link", name="← Previous day").click()
        await expect(page.get_by_role("heading", name="Sales, Wed 13 Jan 2027")).to_be_visible()
        await expect(page.locator("#report-table tbody tr")).to_have_count(2)
        marked = page.locator("svg.chart").first.locator('text[font-weight="700"]')
        await expect(marked).to_have_count(0)  # a past day has no "now"
        await fits(page)

        await page.locator('select[name="period"]').select_option("range")
        await page.get_by_label("Range from").fill("2027-01-13")
        await page.get_by_label("to", exact=True).fill("2027-01-12")
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#report-error")).to_contain_text("to must not come before from")
        await page.get_by_label("to", exact=True).fill("2027-01-14")
        await page.get_by_role("button", name="Show").click()
        async with page.expect_download() as got:
            await page.get_by_role("link", name="Download CSV").click()
        download = await got.value
        text = await anyio.Path(await download.path()).read_text(encoding="utf-8")
        assert text.startswith("\ufeff")
        lines = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert len(lines) == 3
        refunded = next(r for r in lines if r["order_id"] == sold)
        assert refunded["refund_reason"] == "refunded by an operator: one was warm"
        assert re.fullmatch(r"2027-01-13T10:00:\d\d\+05:30", refunded["finished_at"])
        assert refunded["unit_price"] == "25.00" and refunded["rating"] == ""
        await context.close()


async def test_a_machine_has_its_own_low_stock_threshold(tmp_path: Path, browser: Browser) -> None:
    async with admin_stack(tmp_path) as stack:
        services = stack.services
        await _machine(services, "lobby-1", "Lobby", "Tower A")  # 9 of 10, default threshold 3
        context = await phone(browser, stack.url)
        page = await context.new_page()
        await log_in(page, "/admin/machines/lobby-1")
        field = page.get_by_label(re.compile("Low-stock alert at"))
        await expect(field).to_have_value("")
        await expect(field).to_have_attribute("placeholder", "3")
        await field.fill("11")
        await page.get_by_role("button", name="Set threshold").click()
        await expect(page.locator("#e-threshold")).to_have_text(
            "The threshold must be a whole number from 0 to 10."
        )
        await expect(field).to_have_value("11")  # what was typed stays
        await field.fill("8")
        await page.get_by_role("button", name="Set threshold").click()
        await expect(page.get_by_role("status")).to_have_text("Low-stock alert threshold saved.")
        await expect(field).to_have_value("8")
        await vend(services, "lobby-1", 1)  # 8 left: at this machine's threshold, above 3
        assert (await stack.runtime.alert_sender.run_once()).raised == 1
        await page.reload()
        await expect(page.locator("dl.facts")).to_contain_text("low (alert at 8)")
        await fits(page)
        await shot(page, "machine-threshold-phone")
        await field.fill("")
        await page.get_by_role("button", name="Set threshold").click()  # back to the default
        await expect(field).to_have_value("")
        async with services.ctx.db() as s:
            alerts = (await s.scalars(select(Alert))).all()
            changes = (
                await s.scalars(select(AuditEntry).where(AuditEntry.action == "threshold_changed"))
            ).all()
        assert [a.message for a in alerts] == [
            "Lobby (lobby-1) is low on stock: 8 of 10 left (threshold 8)."
        ]
        assert [(c.actor, c.before, c.after) for c in changes] == [
            ("admin", {"low_stock_threshold": None}, {"low_stock_threshold": 8, "in_force": 8}),
            ("admin", {"low_stock_threshold": 8}, {"low_stock_threshold": None, "in_force": 3}),
        ]
        await context.close()

"""The catalogue, planogram editor and pick list on a phone-sized Chromium."""

import csv
import io
import re
from pathlib import Path

import anyio
import pytest
from playwright.async_api import Browser, expect

from api.services.catalogue import ProductFields
from tests.admin.browser import phone, shot
from tests.admin.support import admin_client, admin_stack, register, vend
from tests.admin.test_operator_phone import fits, log_in

pytestmark = pytest.mark.browser


async def test_an_operator_builds_a_planogram_restocks_and_reads_the_pick_list(
    tmp_path: Path, browser: Browser
) -> None:
    async with admin_stack(tmp_path) as stack:
        services = stack.services
        await register(services, "lobby-1", name="Lobby", stock=4)
        await register(services, "gym-1", name="Gym", stock=0)
        await services.catalogue.create(ProductFields(name="Chips", price_amount=1500))
        context = await phone(browser, stack.url)
        page = await context.new_page()

        # The catalogue: add a product; a bad price is explained next to its field.
        await log_in(page, "/admin/products")
        form = page.locator("#new-product")
        await form.get_by_label("Name").fill("Cola 330 ml")
        await form.get_by_label("Price (₹)").fill("abc")
        await form.get_by_role("button", name="Add product").click()
        await expect(page.locator("#e-price")).to_contain_text("amount in rupees")
        await form.get_by_label("Name").fill("Cola 330 ml")
        await form.get_by_label("Price (₹)").fill("20")
        await form.get_by_role("button", name="Add product").click()
        await expect(page.get_by_role("status")).to_have_text("Product added.")
        await expect(page.locator("#products")).to_contain_text("Cola 330 ml")
        await fits(page)
        await shot(page, "products")

        # The planogram editor: slot "1" becomes A1 (Cola) and a new row A2 (Chips, own price).
        await page.goto("/admin/machines/lobby-1")
        await page.locator("#planogram-link").click()
        await page.wait_for_url(re.compile(r"/admin/machines/lobby-1/slots$"))
        await page.get_by_label("Slot id (row 1)").fill("A1")
        await page.get_by_label("Product of 1").select_option(label="Cola 330 ml (₹20.00)")
        await page.get_by_label("Slot id (row 2)").fill("A2")
        await page.get_by_label("Product (row 2)").select_option(label="Chips (₹15.00)")
        await page.get_by_label("Own price (row 2)").fill("12.50")
        await page.get_by_label("Motor (row 2)").fill("0")  # the same motor as A1: refused
        await page.get_by_role("button", name="Save planogram").click()
        await expect(page.locator("#planogram-error")).to_contain_text("each motor once")
        await page.get_by_label("Slot id (row 2)").fill("A2")
        await page.get_by_label("Product (row 2)").select_option(label="Chips (₹15.00)")
        await page.get_by_label("Own price (row 2)").fill("12.50")
        await page.get_by_label("Motor (row 2)").fill("1")
        await page.get_by_label("Slot id (row 1)").fill("A1")
        await page.get_by_label("Product of 1").select_option(label="Cola 330 ml (₹20.00)")
        await page.get_by_role("button", name="Save planogram").click()
        await expect(page.get_by_role("status")).to_have_text("Planogram saved.")
        # A1 keeps slot "1"'s capacity (10, par 10); a new product waits for the driver.
        await expect(page.locator("#slot-A1")).to_contain_text("0/10")
        plan = await services.slots.get("lobby-1")
        assert [(s["id"], s["motor"], s["price"]["amount"]) for s in plan["slots"]] == [
            ("A1", 0, 2000),
            ("A2", 1, 1250),
        ]

        # Restock: fill to par (A1 10, A2 6), then the pick list.
        await page.locator("#fill-par").click()
        await expect(page.get_by_role("status")).to_have_text("Stock saved.")
        await expect(page.locator("#slot-A2")).to_contain_text("6/8")
        await fits(page)
        await shot(page, "planogram")

        await page.get_by_label("Gym").check()
        await page.get_by_role("button", name="Copy to the chosen machines").click()
        await expect(page.get_by_role("status")).to_have_text("Planogram copied.")

        await page.get_by_role("link", name="Pick list").click()
        await expect(page.locator("#pick-total")).to_have_text("16 units")  # gym-1: 10 + 6
        rows = page.locator("#picklist tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("Chips")
        await expect(rows.nth(0).locator(".units")).to_have_text("6")
        await page.get_by_label("Lobby").check()
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#picklist")).to_contain_text("Nothing to bring")
        await page.get_by_label("Lobby").uncheck()
        await page.get_by_label("Gym").check()
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#pick-total")).to_have_text("16 units")
        await fits(page)
        await shot(page, "picklist")
        async with page.expect_download() as got:
            await page.locator("#pick-csv").click()
        download = await got.value
        sheet = await anyio.Path(await download.path()).read_text()
        table = list(csv.reader(io.StringIO(sheet)))
        assert table[0] == ["product_id", "sku", "name", "units", "gym-1"]
        assert sorted((r[2], r[3]) for r in table[1:]) == [("Chips", "6"), ("Cola 330 ml", "10")]
        await context.close()


async def test_reports_show_sales_by_product_and_slot(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack:
        await register(stack.services, "lobby-1", name="Lobby", stock=9)
        await vend(stack.services, "lobby-1", 3, dispensed=2)
        async with admin_client(stack) as admin:
            products = (await admin.get("/admin/reports?group=product")).text
            slots = (await admin.get("/admin/reports?period=day&group=slot")).text
        table = products[products.index('id="report-table"') :]
        assert '<td data-label="Product">Lobby</td>' in table
        assert '<td data-label="Units">2</td>\n    <td data-label="Sales">₹50.00</td>' in table
        table = slots[slots.index('id="report-table"') :]
        assert '<td data-label="Slot">Lobby · slot 1</td>' in table
        assert '<td data-label="Units">2</td>\n    <td data-label="Sales">₹50.00</td>' in table

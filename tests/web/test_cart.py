"""A machine with several products on a phone: the grid, the cart, and per-line progress."""

import re

from playwright.async_api import Page, expect

from api.services.catalogue import ProductFields
from api.services.slots import SlotPlan
from tests.http.test_slots_api import png
from tests.support.stack import Stack
from tests.web.browser import WEB
from tests.web.machines import Provision
from tests.web.screens import Screens
from tests.web.shopper import Shopper

pytestmark = WEB


async def snacks(stack: Stack, mid: str) -> None:
    catalogue = stack.services.catalogue
    cola = (await catalogue.create(ProductFields(name="Cola 330 ml", price_amount=2000)))["id"]
    chips = (await catalogue.create(ProductFields(name="Masala chips", price_amount=1500)))["id"]
    water = (await catalogue.create(ProductFields(name="Water", price_amount=1000)))["id"]
    await catalogue.set_image(cola, png(24, 24))
    await stack.services.slots.put(
        mid,
        0,
        [
            SlotPlan("A1", 0, cola, capacity=8, par=6, stock=5),
            SlotPlan("A2", 1, chips, capacity=8, par=6, stock=1),
            SlotPlan("B1", 2, water, capacity=8, par=6, stock=0),
        ],
    )


async def test_a_shopper_fills_a_cart_and_follows_each_line(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("snack-1", name="Snack corner")
    await snacks(stack, "snack-1")
    await shopper.open_machine("snack-1")
    grid = page.locator("#grid .product")
    await expect(grid).to_have_count(3)
    await expect(grid.nth(0)).to_contain_text("A1")
    await expect(grid.nth(0)).to_contain_text("Cola 330 ml")
    await expect(grid.nth(0)).to_contain_text("₹20.00")
    await expect(grid.nth(0)).to_contain_text("5 left")
    await expect(grid.nth(0).locator("img")).to_have_attribute("src", re.compile(r"/image\?v="))
    await expect(grid.nth(2)).to_contain_text("Sold out")
    assert await page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0

    # A tap on the sold-out water says so and counts as lost demand.
    await page.get_by_role("button", name="One more Water").click()
    await expect(page.locator("#cart-note")).to_have_text("Water is sold out in this machine.")
    plan = await stack.services.slots.get("snack-1")
    assert plan["slots"][2]["sold_out_taps"] == 1

    await page.get_by_role("button", name="One more Cola 330 ml").click()
    await page.get_by_role("button", name="One more Cola 330 ml").click()
    await page.get_by_role("button", name="One more Masala chips").click()
    await page.get_by_role("button", name="One more Masala chips").click()  # only 1 left
    await expect(page.locator("#cart-note")).to_have_text("Only 1 Masala chips left.")
    lines = page.locator("#cart-lines li")
    await expect(lines).to_have_count(2)
    await expect(lines.nth(0)).to_have_text("A1 Cola 330 ml \u00d7 2 · ₹40.00")
    await expect(lines.nth(1)).to_have_text("A2 Masala chips \u00d7 1 · ₹15.00")
    await expect(page.locator("#cart-total")).to_have_text("₹55.00")
    await screens.shot("grid-and-cart", doc="shopper-grid-cart.png")

    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    # Meanwhile the driver counts only one cola: the order is refused naming it, and the
    # grid and the cart follow the machine.
    await stack.services.slots.restock("snack-1", [("A1", 1), ("A2", 1), ("B1", 0)])
    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page.locator("#buy-error")).to_have_text(
        "Fewer Cola 330 ml (A1) are left than your cart holds. Please choose fewer."
    )
    await expect(grid.nth(0)).to_contain_text("1 left")
    await expect(lines.nth(0)).to_have_text("A1 Cola 330 ml \u00d7 1 · ₹20.00")
    await expect(page.locator("#cart-total")).to_have_text("₹35.00")
    order_id = await shopper.pay_in_test_mode("₹35.00")
    command = await machine.next_command()
    assert command.quantity == 2
    services = stack.services
    await services.dispense.apply_result("snack-1", command.cmd_id, "accepted", 0)
    running = [{"slot": "A1", "dispensed": 1}, {"slot": "A2", "dispensed": 0}]
    await services.dispense.apply_result("snack-1", command.cmd_id, "running", 1, None, running)
    progress = page.locator("#lines li")
    await expect(progress.nth(1)).to_have_text("A2 Masala chips: 0 of 1 out…")
    # The chips jam: the cola comes out, the chips are refunded.
    final = [{"slot": "A1", "dispensed": 1}, {"slot": "A2", "dispensed": 0}]
    await services.dispense.apply_result("snack-1", command.cmd_id, "failed", 1, "jam", final)
    await expect(progress.nth(0)).to_have_text("A1 Cola 330 ml: 1 of 1 out")
    await expect(progress.nth(1)).to_have_text("A2 Masala chips: 0 of 1 out, ₹15.00 refunded")
    await expect(page.locator("#items")).to_be_hidden()
    await screens.shot("per-line-progress", doc="shopper-lines.png")
    view = await services.orders.view(order_id)
    assert view["refund"]["amount"] == 1500

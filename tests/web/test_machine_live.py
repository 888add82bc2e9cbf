"""The machine page follows the machine on a phone: the unlock form is off (and says why)
while the machine can't be unlocked and comes back by itself; the dev-mode display note
follows the code; a failed payment keeps the quantity or the cart chosen."""

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from api.clock import FakeClock
from tests.support.stack import Stack, running_stack
from tests.web.browser import WEB, phone_page
from tests.web.machines import Provision
from tests.web.screens import Screens
from tests.web.shopper import Shopper
from tests.web.test_cart import snacks

pytestmark = WEB
CLOCK = FakeClock(int(time.time()))
FOLLOW_S = 5  # web/static/js/machine.js re-reads the status this often
LIVE = {"timeout": (FOLLOW_S + 5) * 1000}


@pytest_asyncio.fixture(loop_scope="session")
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    CLOCK.value = int(time.time())
    async with running_stack(tmp_path, mqtt=False, clock=CLOCK, env="dev") as running:
        yield running


async def expect_off(page: Page, why: str) -> None:
    await expect(page.get_by_role("button", name="Unlock")).to_be_disabled(**LIVE)
    await expect(page.get_by_label("Code on the machine's display")).to_be_disabled()
    await expect(page.locator("#code-off")).to_have_text(why)


async def expect_on(page: Page) -> None:
    await expect(page.get_by_role("button", name="Unlock")).to_be_enabled(**LIVE)
    await expect(page.get_by_label("Code on the machine's display")).to_be_enabled()
    await expect(page.locator("#code-off")).to_have_text("")


async def test_the_unlock_form_follows_offline_and_out_of_service(
    stack: Stack, provision: Provision, screens: Screens, page: Page
) -> None:
    machine = await provision("annex-9", name="Annex coffee", online=False)
    await page.goto(f"{stack.url}/m/{machine.machine_id}")
    await expect_off(
        page, "Unlocking is off until the machine is back online. This page updates by itself."
    )
    await expect(page.locator("#notice")).to_have_text(
        "This machine is offline right now, so it can't sell."
    )
    await screens.shot("unlock-off-offline", doc="shopper-unlock-off.png")

    await stack.services.machines.apply_status(machine.machine_id, {"state": "online", "boot": 1})
    await expect_on(page)
    await expect(page.locator("#machine-online")).to_have_text("Online")
    await expect(page.locator("#notice")).to_have_text("")

    await stack.services.machines.set_mode(machine.machine_id, "out_of_service")
    await expect_off(
        page, "Unlocking is off while the machine is out of service. This page updates by itself."
    )
    await expect(page.locator("#machine-online")).to_have_text("Out of service")
    await stack.services.machines.set_mode(machine.machine_id, "in_service")
    await expect_on(page)


async def test_the_unlock_form_is_off_while_someone_else_uses_the_machine(
    stack: Stack, provision: Provision, browser: Browser, screens: Screens, page: Page
) -> None:
    machine = await provision("lobby-1", stock=8)
    await page.goto(f"{stack.url}/m/{machine.machine_id}")
    await expect_on(page)

    other, other_errors = await phone_page(browser)
    try:
        first = Shopper(other, stack.url, screens)
        await first.open_machine(machine.machine_id)
        await first.unlock(await machine.display_code())
        await first.expect_locked()
        await expect_off(
            page,
            "Unlocking is off while someone else uses the machine. "
            "This page updates when they finish.",
        )
        await expect(page.locator("#notice")).to_contain_text("Someone is using this machine")
        await screens.shot("unlock-off-busy")
        await other.get_by_role("button", name="Cancel").click()
        await expect(other.locator("#notice")).to_contain_text("Cancelled")
    finally:
        await other.context.close()
    assert other_errors == []
    await expect_on(page)
    await expect(page.locator("#notice")).to_have_text("")


async def test_the_dev_display_note_follows_the_code(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("sim-1", name="Simulated snacks", simulated=True)
    await shopper.open_machine(machine.machine_id)
    note = page.locator("#demo-display")
    first = await machine.display_code()
    await expect(note).to_have_text(f"Dev mode: this simulated machine's display shows {first}.")
    await shopper.unlock(first)
    await shopper.expect_locked()
    await expect(note).to_have_text(
        "Dev mode: this simulated machine's display shows no code right now."
    )
    await page.get_by_role("button", name="Cancel").click()
    second = await machine.display_code()  # the lock's end showed a new one
    assert second != first
    await expect(note).to_have_text(
        f"Dev mode: this simulated machine's display shows {second}.", **LIVE
    )
    await screens.shot("dev-display")

    # The code runs out on its own and the display shows another.
    CLOCK.advance(stack.settings.display_code_ttl_s + 1)
    await stack.services.sweeper.tick()
    third = await machine.display_code()
    assert third != second
    await expect(note).to_have_text(
        f"Dev mode: this simulated machine's display shows {third}.", **LIVE
    )


async def test_a_failed_payment_keeps_the_quantity(
    stack: Stack, provision: Provision, shopper: Shopper, page: Page, screens: Screens
) -> None:
    machine = await provision("lobby-1", price=1500, stock=6)
    await shopper.open_machine(machine.machine_id)
    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    await shopper.choose(3, total="₹45.00")
    await page.get_by_role("button", name="Pay", exact=True).click()
    await page.wait_for_url(re.compile(r"/checkout/test/"))
    await page.get_by_role("button", name="Fail payment").click()
    await expect(page.locator("#checkout-error")).to_have_text(
        re.compile(r"^The payment failed, so nothing was charged\.")
    )
    await page.get_by_role("link", name="Back to the machine").click()
    await expect(page.get_by_role("heading", name="The machine is yours")).to_be_visible()
    await expect(page.get_by_label("How many?")).to_have_value("3")
    await expect(page.locator("#total")).to_have_text("₹45.00")
    await screens.shot("quantity-kept")


async def test_a_failed_payment_keeps_the_cart(
    stack: Stack, provision: Provision, shopper: Shopper, page: Page
) -> None:
    machine = await provision("snack-1", name="Snack corner")
    await snacks(stack, "snack-1")
    await shopper.open_machine("snack-1")
    await page.get_by_role("button", name="One more Cola 330 ml").click()
    await page.get_by_role("button", name="One more Cola 330 ml").click()
    await page.get_by_role("button", name="One more Masala chips").click()
    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    await page.get_by_role("button", name="Pay", exact=True).click()
    await page.wait_for_url(re.compile(r"/checkout/test/"))
    await page.get_by_role("button", name="Fail payment").click()
    await expect(page.locator("#checkout-error")).to_contain_text("The payment failed")
    await page.get_by_role("link", name="Back to the machine").click()
    await expect(page.get_by_role("heading", name="The machine is yours")).to_be_visible()
    lines = page.locator("#cart-lines li")
    await expect(lines).to_have_text(
        ["A1 Cola 330 ml \u00d7 2 · ₹40.00", "A2 Masala chips \u00d7 1 · ₹15.00"]
    )
    await expect(page.locator("#cart-total")).to_have_text("₹55.00")

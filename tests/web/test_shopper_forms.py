"""The code box and the quantity on a phone: forgiving input, and limits said out loud."""

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import update

from api.clock import FakeClock
from schema.models import VendSession
from tests.support.stack import Stack, running_stack
from tests.web.browser import WEB
from tests.web.machines import Provision
from tests.web.screens import Screens
from tests.web.shopper import Shopper

pytestmark = WEB
CLOCK = FakeClock(int(time.time()))  # moved by hand, so a reservation ends when a test says


@pytest_asyncio.fixture(loop_scope="session")
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    CLOCK.value = int(time.time())
    async with running_stack(tmp_path, mqtt=False, clock=CLOCK) as running:
        yield running


def spaced(code: str, separator: str) -> str:
    return code[:3] + separator + code[3:]


async def test_the_code_box_takes_spaces_separators_and_pastes(
    stack: Stack, provision: Provision, shopper: Shopper, page: Page
) -> None:
    machine = await provision("lobby-1", stock=4)
    await shopper.open_machine(machine.machine_id)
    box = page.get_by_label("Code on the machine's display")
    await expect(box).to_have_attribute("inputmode", "numeric")
    await expect(box).to_have_attribute("autocomplete", "one-time-code")
    await box.press_sequentially(spaced(await machine.display_code(), " "))  # typed: 754 125
    await expect(box).to_have_value(await machine.display_code())
    await page.get_by_role("button", name="Unlock").click()
    await shopper.expect_locked()
    await page.get_by_role("button", name="Cancel").click()

    # Pasted with a dash, from the finder.
    await page.goto(f"{stack.url}/")
    finder = page.get_by_label("Enter the code on the machine's display")
    await expect(finder).to_have_attribute("inputmode", "numeric")
    await finder.fill(spaced(await machine.display_code(), "-"))
    await page.get_by_role("button", name="Start").click()
    await page.wait_for_url(f"{stack.url}/m/{machine.machine_id}")
    await expect(page.get_by_role("heading", name="The machine is yours")).to_be_visible()


async def test_asking_for_too_many_says_why(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("gym-2", stock=8)  # more than one purchase may take (5)
    await shopper.open_machine(machine.machine_id)
    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    quantity = page.get_by_label("How many?")
    await quantity.fill("9")
    await quantity.blur()
    await expect(quantity).to_have_value("5")
    await expect(page.locator("#quantity-note")).to_have_text(
        "At most 5 per purchase. We set it to 5."
    )
    await expect(page.locator("#total")).to_have_text("₹125.00")
    await screens.shot("too-many", doc="shopper-too-many.png")
    await page.get_by_role("button", name="Cancel").click()

    small = await provision("desk-3", stock=2)
    await shopper.open_machine(small.machine_id)
    await shopper.unlock(await small.display_code())
    await shopper.expect_locked()
    await quantity.fill("4")
    await quantity.blur()
    await expect(quantity).to_have_value("2")
    await expect(page.locator("#quantity-note")).to_have_text(
        "Only 2 left in this machine. We set it to 2."
    )
    await page.get_by_role("button", name="One fewer").click()
    await expect(page.locator("#quantity-note")).to_be_empty()
    await page.get_by_role("button", name="One more").click()
    await expect(page.locator("#quantity-max")).to_have_text("Only 2 left in this machine.")


async def test_a_new_code_is_announced_only_once_the_display_shows_it(
    stack: Stack, provision: Provision, shopper: Shopper, page: Page
) -> None:
    machine = await provision("hall-4", stock=4)
    await shopper.open_machine(machine.machine_id)
    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    CLOCK.value = int(time.time())
    async with stack.services.ctx.db.begin() as s:  # the reservation ends in a second
        await s.execute(
            update(VendSession)
            .where(VendSession.machine_id == machine.machine_id)
            .values(expires_at=CLOCK.now() + 1)
        )
    await page.reload()
    notice = page.locator("#notice")
    # The page's countdown ran out but the server has not ended the lock yet: no code to enter.
    await expect(notice).to_have_text(
        "Your reservation ran out. The machine's display will show a new code in a moment…"
    )
    await expect(page.locator("#buy")).to_be_hidden()
    CLOCK.advance(5)
    await stack.services.sweeper.tick()  # the server ends the lock: a new code is shown
    await expect(notice).to_have_text(
        "Your reservation ran out. The machine's display now shows a new code: "
        "enter it to start again."
    )
    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()

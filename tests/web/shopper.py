"""A shopper at the pages, as a page object: what they see and what they press."""

import re

from playwright.async_api import Page, expect

from tests.web.screens import Screens


class Shopper:
    def __init__(self, page: Page, base_url: str, screens: Screens) -> None:
        self.page = page
        self.base_url = base_url
        self.screens = screens

    async def open_machine(self, machine_id: str) -> None:
        await self.page.goto(f"{self.base_url}/m/{machine_id}")
        await expect(self.page.locator("#machine-online")).to_contain_text("Online")

    async def unlock(self, code: str) -> None:
        await self.page.get_by_label("Code on the machine's display").fill(code)
        await self.page.get_by_role("button", name="Unlock").click()

    async def expect_locked(self) -> None:
        await expect(self.page.get_by_role("heading", name="The machine is yours")).to_be_visible()
        await expect(self.page.get_by_role("heading", name="The machine is yours")).to_be_focused()
        await expect(self.page.locator("#countdown")).to_have_text(
            re.compile(r"^[0-9]+:[0-5][0-9]$")
        )

    async def choose(self, quantity: int, total: str) -> None:
        more = self.page.get_by_role("button", name="One more")
        while await self.page.get_by_label("How many?").input_value() != str(quantity):
            await more.click()
        await expect(self.page.locator("#total")).to_have_text(total)

    async def pay_in_test_mode(self, amount: str) -> str:
        """Pay on the built-in test checkout; returns the order id of the page it lands on."""
        await self.page.get_by_role("button", name="Pay", exact=True).click()
        await self.page.wait_for_url(re.compile(r"/checkout/test/"))
        await expect(self.page.get_by_text("TEST MODE")).to_be_visible()
        await expect(self.page.locator("#amount")).to_have_text(amount)
        await self.screens.shot("test-checkout", doc="shopper-test-checkout.png")
        await self.page.get_by_role("button", name=f"Pay {amount}").click()
        await self.page.wait_for_url(re.compile(r"/orders/"))
        return self.page.url.rsplit("/", 1)[1]

    async def expect_state(self, title: str | re.Pattern[str]) -> None:
        await expect(self.page.locator("#state-title")).to_have_text(title)

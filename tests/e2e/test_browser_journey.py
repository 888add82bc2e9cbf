"""A shopper buys two items in Chromium from a simulated machine, on each server shape."""

import re
import shutil
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from tests.e2e import flow
from tests.e2e.external import external_stack
from tests.support.stack import Stack, running_stack
from tests.web.browser import WEB, phone_page
from tests.web.screens import ROOT, Screens
from tests.web.shopper import Shopper

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = WEB

ARTIFACTS = ROOT / "test-artifacts" / "e2e"


class E2eScreens(Screens):
    """Screenshots to test-artifacts/e2e/<test>/ only (never to the docs)."""

    def __init__(self, page: Page, test_name: str) -> None:
        self.page = page
        self.dir = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.count = 0

    async def shot(self, step: str, doc: str | None = None) -> Path:
        return await super().shot(step)


async def journey(browser: Browser, stack: Stack, port: int, mid: str, key: str, name: str) -> None:
    page, errors = await phone_page(browser)
    screens = E2eScreens(page, name)
    shopper = Shopper(page, stack.url, screens)
    try:
        async with flow.fleet(port, [(mid, key)]) as fleet:
            vm = fleet.machine(mid)
            await flow.wait_online(stack.services, mid)
            code = await flow.lcd_code(vm)

            await shopper.open_machine(mid)
            await expect(page.locator("#machine-price")).to_have_text("₹25.00 each")
            await screens.shot("machine")
            await shopper.unlock(code)
            await shopper.expect_locked()
            await vm.wait_for(lambda: vm.lcd == ("In use", "Pay on phone"), flow.WAIT_S)
            await shopper.choose(2, total="₹50.00")
            await screens.shot("quantity")

            order_id = await shopper.pay_in_test_mode("₹50.00")
            await shopper.expect_state("Done. Enjoy!")
            await expect(page.locator("#progress-text")).to_have_text("2 of 2")
            await screens.shot("done")

            view = await stack.services.orders.view(order_id)
            assert (view["status"], view["dispensed"], view["amount"]) == ("dispensed", 2, 5000)
            assert vm.motor_runs == 2 and vm.controller.stock == 6
            assert (await stack.services.views.public_status(mid, ""))["stock"] == 6
            assert await flow.lcd_code(vm, other_than=code) != code

            await page.goto(f"{stack.url}/m/{mid}")  # free again for the next shopper
            await expect(page.locator("#code-form")).to_be_visible()
            await expect(page.locator("#machine-stock")).to_have_text("6 in stock")
            await screens.shot("next-shopper")
    finally:
        await page.context.close()
    assert errors == [], f"the page logged errors: {errors}"


async def test_buy_two_on_the_embedded_broker(browser: Browser, tmp_path: Path) -> None:
    async with running_stack(tmp_path, mqtt=True) as stack:
        key = await flow.register(stack.services, "web-e2e-1", stock=8)
        await journey(browser, stack, stack.settings.mqtt_port, "web-e2e-1", key, "embedded")


async def test_buy_two_on_postgres_and_mosquitto(
    browser: Browser, tmp_path: Path, postgresql_url: str
) -> None:
    async with external_stack(tmp_path, postgresql_url, [("web-pg-1", 8)]) as ext:
        await flow.bridge_up(ext.stack)
        await journey(
            browser, ext.stack, ext.mqtt_port, "web-pg-1", ext.keys["web-pg-1"], "postgres"
        )

"""Live-payment mode: the machine page opens Razorpay Checkout and verifies its answer.

Razorpay's checkout.js cannot be fetched here, so the browser gets a stand-in
that records the options the page passes; the test then pays on a
Razorpay-compatible server and calls the page's handler as Checkout would.
"""

import re
from pathlib import Path

from playwright.async_api import Page, Route, expect

from tests.fakes.razorpay_server import razorpay_fake
from tests.support.stack import running_stack
from tests.web.browser import WEB
from tests.web.machines import provision_service_machine
from tests.web.screens import Screens
from tests.web.shopper import Shopper

pytestmark = WEB

CHECKOUT_JS = "https://checkout.razorpay.com/v1/checkout.js"
STAND_IN = """
window.Razorpay = function (options) { this.options = options; this.handlers = {}; };
window.Razorpay.prototype.on = function (name, fn) { this.handlers[name] = fn; };
window.Razorpay.prototype.open = function () { window.openedCheckout = this; };
"""


async def test_pay_with_razorpay_checkout(tmp_path: Path, page: Page, screens: Screens) -> None:
    loaded: list[str] = []

    async def checkout_js(route: Route) -> None:
        loaded.append(route.request.url)
        await route.fulfill(body=STAND_IN, content_type="application/javascript")

    await page.route(CHECKOUT_JS, checkout_js)
    async with (
        razorpay_fake() as fake,
        running_stack(
            tmp_path,
            mqtt=False,
            razorpay_key_id=fake.key_id,
            razorpay_key_secret=fake.key_secret,
            razorpay_webhook_secret=fake.webhook_secret,
            razorpay_base_url=fake.base_url,
        ) as stack,
    ):
        machine = await provision_service_machine(stack, "lobby-1", price=3000, stock=5)
        shopper = Shopper(page, stack.url, screens)
        await shopper.open_machine(machine.machine_id)
        assert loaded == [CHECKOUT_JS]
        await shopper.unlock(await machine.display_code())
        await shopper.expect_locked()
        await shopper.choose(2, total="₹60.00")
        await page.get_by_role("button", name="Pay", exact=True).click()

        await page.wait_for_function("window.openedCheckout !== undefined")
        options = await page.evaluate(
            "({key, order_id, amount, currency} = window.openedCheckout.options,"
            " {key, order_id, amount, currency})"
        )
        assert options["key"] == fake.key_id and options["amount"] == 6000
        assert options["currency"] == "INR" and options["order_id"] in fake.orders

        # Closing the window without paying lets the shopper press Pay again.
        await page.evaluate("window.openedCheckout.options.modal.ondismiss()")
        await expect(page.locator("#notice")).to_contain_text("Payment not finished")
        await expect(page.get_by_role("button", name="Pay", exact=True)).to_be_enabled()

        payment_id, signature = fake.pay(options["order_id"])
        await page.evaluate(
            "([o, p, s]) => window.openedCheckout.options.handler("
            "{razorpay_order_id: o, razorpay_payment_id: p, razorpay_signature: s})",
            [options["order_id"], payment_id, signature],
        )
        await page.wait_for_url(re.compile(r"/orders/"))
        await shopper.expect_state("Payment received")
        order_id = page.url.rsplit("/", 1)[1]
        assert (await stack.services.orders.view(order_id))["status"] == "paid"
        await page.close()  # end the event stream before the server stops

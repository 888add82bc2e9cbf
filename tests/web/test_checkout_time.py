"""Checkout time on a phone: the time left to pay, the reservation kept while checkout is
open, the gateway's timeout, and the real reason when a payment comes too late.

The server's clock is moved by hand (it starts at the real time, so the page's
countdown, which reads the browser's clock, agrees with it until a test moves it).
"""

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Page, Route, expect

from api.clock import FakeClock
from api.services.reservation import CHECKOUT_GRACE_S, HOLD_STEP_S
from schema.models import VendSession
from tests.fakes.razorpay_server import razorpay_fake
from tests.support.stack import Stack, running_stack
from tests.web.browser import WEB
from tests.web.machines import Provision, provision_service_machine
from tests.web.screens import Screens
from tests.web.shopper import Shopper
from tests.web.test_razorpay_journey import CHECKOUT_JS, STAND_IN

pytestmark = WEB
CLOCK = FakeClock(int(time.time()))
TTL = 30  # a short reservation, so keeping it longer shows
PAY_MARGIN_S = 10  # web/static/js/common.js: checkout closes this long before the end


@pytest_asyncio.fixture(loop_scope="session")
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    CLOCK.value = int(time.time())
    async with running_stack(tmp_path, mqtt=False, clock=CLOCK, lock_ttl_s=TTL) as running:
        yield running


async def the_lock(stack: Stack, machine_id: str) -> VendSession:
    async with stack.services.ctx.db() as s:
        found = await s.scalar(
            VendSession.__table__.select()
            .with_only_columns(VendSession.id)
            .where(VendSession.machine_id == machine_id)
        )
        lock = await s.get(VendSession, found)
    assert lock is not None
    return lock


def seconds(clock_text: str) -> int:
    minutes, secs = clock_text.split(":")
    return int(minutes) * 60 + int(secs)


async def open_checkout(shopper: Shopper, page: Page, code: str) -> None:
    """Unlock and press Pay: the test checkout opens and keeps the reservation."""
    await shopper.unlock(code)
    await shopper.expect_locked()
    async with page.expect_response(re.compile(r"/extend$")) as extended:
        await page.get_by_role("button", name="Pay", exact=True).click()
        await page.wait_for_url(re.compile(r"/checkout/test/"))
    assert (await extended.value).status == 200


async def test_checkout_shows_the_time_to_pay_and_keeps_the_machine(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("lobby-1", price=2000, stock=5)
    await shopper.open_machine(machine.machine_id)
    await open_checkout(shopper, page, await machine.display_code())

    lock = await the_lock(stack, machine.machine_id)
    cap = lock.created_at + TTL + CHECKOUT_GRACE_S
    # Kept a minute from now: past the reservation's own TTL_S, within the cap.
    assert lock.expires_at == CLOCK.now() + HOLD_STEP_S > lock.created_at + TTL
    left = page.locator("#pay-time")
    await expect(left).to_have_text(re.compile(r"^[0-9]+:[0-5][0-9]$"))
    shown = seconds(await left.inner_text())
    real_left = cap - PAY_MARGIN_S - int(time.time())  # the browser counts in real time
    assert real_left - 3 <= shown <= real_left + 1
    await expect(left).not_to_have_text(await left.inner_text())  # it counts down, live
    await expect(page.locator("#pay-time-box")).to_contain_text("Time left to pay")
    await screens.shot("checkout-time", doc="shopper-checkout-time.png")

    # The reservation's own time is over, the shopper is still paying: the machine is theirs.
    CLOCK.advance(TTL + 5)
    await page.get_by_role("button", name="Pay ₹20.00").click()
    await page.wait_for_url(re.compile(r"/orders/"))
    await shopper.expect_state("Payment received")
    command = await machine.next_command()
    assert command.quantity == 1


async def test_a_checkout_past_the_reservation_takes_no_payment(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("lobby-1", stock=5)
    await shopper.open_machine(machine.machine_id)
    await open_checkout(shopper, page, await machine.display_code())
    lock = await the_lock(stack, machine.machine_id)
    CLOCK.advance(lock.created_at + TTL + CHECKOUT_GRACE_S + 1 - CLOCK.now())  # past the cap
    await page.reload()
    await expect(
        page.get_by_text("The time to pay ran out, so nothing was charged.")
    ).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile("^Pay"))).to_have_count(0)
    await screens.shot("checkout-timed-out")


async def test_a_payment_after_the_reservation_says_why_it_is_refunded(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("lobby-1", price=2500, stock=5)
    await shopper.open_machine(machine.machine_id)
    await open_checkout(shopper, page, await machine.display_code())
    lock = await the_lock(stack, machine.machine_id)
    # The payment is made on the open page but reaches the server after the reservation
    # ended (a slow bank, say): taken, and refunded in full.
    CLOCK.advance(lock.created_at + TTL + CHECKOUT_GRACE_S + 1 - CLOCK.now())
    await page.get_by_role("button", name="Pay ₹25.00").click()
    await page.wait_for_url(re.compile(r"/orders/"))
    await shopper.expect_state("Your reservation ran out")
    await expect(page.locator("#state-detail")).to_have_text(
        re.compile(
            r"^Your reservation ran out before the payment arrived; the full amount "
            r"(is being|has been) refunded\.$"
        )
    )
    await expect(page.locator("#state-detail")).not_to_contain_text("couldn't dispense")
    await expect(page.locator("#refund")).to_contain_text("₹25.00")
    await screens.shot("late-payment", doc="shopper-late-payment.png")


async def test_razorpay_checkout_times_out_with_the_reservation(
    tmp_path: Path, page: Page, screens: Screens
) -> None:
    async def checkout_js(route: Route) -> None:
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
        ) as live,
    ):
        machine = await provision_service_machine(live, "lobby-1", price=3000, stock=5)
        shopper = Shopper(page, live.url, screens)
        await shopper.open_machine(machine.machine_id)
        await shopper.unlock(await machine.display_code())
        await shopper.expect_locked()
        await page.get_by_role("button", name="Pay", exact=True).click()
        await page.wait_for_function("window.openedCheckout !== undefined")
        timeout = await page.evaluate("window.openedCheckout.options.timeout")
        lock = await the_lock(live, machine.machine_id)
        hold_until = lock.created_at + live.settings.lock_ttl_s + CHECKOUT_GRACE_S
        now = int(time.time())
        assert hold_until - PAY_MARGIN_S - now - 3 <= timeout <= hold_until - PAY_MARGIN_S - now
        # The machine page counts down the same time while Checkout is open.
        shown = seconds(await page.locator("#countdown").inner_text())
        assert abs(shown - timeout) <= 3

"""Shoppers' journeys in Chromium at phone size, against the whole server."""

import re

from playwright.async_api import Browser, Page, expect

from api.views.feedback import FeedbackViews
from tests.support.services import unfinished_commands
from tests.support.stack import Stack
from tests.web.browser import WEB, phone_page
from tests.web.machines import Provision, Step, play, vend_all, vend_then_fail
from tests.web.screens import Screens
from tests.web.shopper import Shopper

pytestmark = WEB


async def test_a_shopper_buys_two(
    stack: Stack,
    provision: Provision,
    shopper: Shopper,
    screens: Screens,
    page: Page,
    browser: Browser,
) -> None:
    machine = await provision("lobby-1", name="Lobby snacks", price=2500, stock=8)
    await shopper.open_machine(machine.machine_id)
    await expect(page).to_have_title("Lobby snacks · SmartVend")
    await expect(page.locator("#machine-price")).to_have_text("₹25.00 each")
    await screens.shot("machine", doc="shopper-machine.png")

    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    await shopper.choose(2, total="₹50.00")
    await screens.shot("quantity", doc="shopper-quantity.png")

    order_id = await shopper.pay_in_test_mode("₹50.00")
    await shopper.expect_state("Payment received")
    await screens.shot("paid", doc="shopper-paid.png")

    items = page.locator("#items li")

    async def check(step: Step) -> None:
        if step.status == "succeeded":
            await shopper.expect_state("Done. Enjoy!")
            await expect(page.locator("#progress-text")).to_have_text("2 of 2")
            await expect(items).to_have_text(["Item 1 of 2: out", "Item 2 of 2: out"])
            await screens.shot("done", doc="shopper-done.png")
        else:
            await shopper.expect_state(f"Dispensing {step.dispensed} of 2…")
            await expect(page.locator("#feedback")).to_be_hidden()
            await screens.shot(f"dispensing-{step.dispensed}")

    command = await play(machine, vend_all(2), after=check)
    assert command.quantity == 2 and command.order_id == order_id

    view = await stack.services.orders.view(order_id)
    assert (view["status"], view["dispensed"], view["amount"], view["refund"]) == (
        "dispensed",
        2,
        5000,
        None,
    )
    status = await stack.services.views.public_status(machine.machine_id, "")
    assert status["stock"] == 6 and not status["locked"]

    # Feedback goes to the operator: a rating, a short comment, once.
    await page.get_by_role("button", name="Send feedback").click()
    await expect(page.locator("#feedback-error")).to_have_text("Choose Good or Not good first.")
    await page.get_by_role("button", name="Good", exact=True).click()
    await expect(page.get_by_role("button", name="Good", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    await page.get_by_label("Anything to add?").fill("Cold and quick")
    await page.get_by_role("button", name="Send feedback").click()
    thanks = page.locator("#feedback-thanks")
    await expect(thanks).to_have_text("Thanks! The machine's operator reads every rating.")
    await screens.shot("feedback-sent", doc="shopper-feedback.png")
    stored = await FeedbackViews(stack.services.ctx).of_order(order_id)
    assert stored is not None
    assert (stored.rating, stored.comment, stored.machine_id) == ("up", "Cold and quick", "lobby-1")
    await page.reload()  # the finished order needs no stream; the rating is not offered again
    await shopper.expect_state("Done. Enjoy!")
    await expect(thanks).to_have_text("Thanks! The machine's operator reads every rating.")
    await expect(page.get_by_role("button", name="Good", exact=True)).to_be_disabled()
    await expect(page.get_by_label("Anything to add?")).to_have_value("Cold and quick")
    await expect(page.locator("#state-detail")).to_have_text(
        "2 items dispensed. Take them from the tray."
    )
    # Someone else opening the order's link (a shared screenshot, say) is not asked to rate.
    stranger, errors = await phone_page(browser)
    await stranger.goto(f"{stack.url}/orders/{order_id}")
    await expect(stranger.locator("#state-title")).to_have_text("Done. Enjoy!")
    await expect(stranger.get_by_label("Anything to add?")).to_be_hidden()
    await expect(stranger.locator("#feedback")).to_be_hidden()
    await stranger.context.close()
    assert errors == []


async def test_a_failed_dispense_is_refunded(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("corridor-2", name="Corridor drinks", price=2500, stock=5)
    await shopper.open_machine(machine.machine_id)
    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    await shopper.choose(2, total="₹50.00")
    order_id = await shopper.pay_in_test_mode("₹50.00")

    await play(machine, vend_then_fail(2, dispensed=1))
    await shopper.expect_state("Only 1 of 2 came out")
    refund = page.locator("#refund-detail")
    await expect(refund).to_contain_text("You paid ₹50.00 and get ₹25.00 back.")
    await expect(refund).to_contain_text(
        "We are refunding ₹25.00 for the 1 item that didn't come out"
    )
    await screens.shot("refund-started")

    await stack.services.refunds.process_pending()  # the gateway confirms at once
    await expect(refund).to_contain_text(
        "We have refunded ₹25.00 for the 1 item that didn't come out"
    )
    await screens.shot("refunded", doc="shopper-refund.png")

    view = await stack.services.orders.view(order_id)
    assert view["status"] == "refunded" and view["dispensed"] == 1
    assert view["refund"] == {"amount": 2500, "status": "processed"}


async def test_a_wrong_code_is_explained(
    provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("gym-3", name="Gym protein bars", price=6000, stock=4)
    right = await machine.display_code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    await shopper.open_machine(machine.machine_id)

    await shopper.unlock("12")
    error = page.locator("#code-error")
    await expect(error).to_have_text("Enter the 6 digits shown on the machine's display.")

    await shopper.unlock(wrong)
    await expect(error).to_have_text(re.compile(r"^That code doesn't match\."))
    await expect(page.get_by_label("Code on the machine's display")).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(page.locator("#buy")).to_be_hidden()
    await screens.shot("wrong-code", doc="shopper-wrong-code.png")

    await shopper.unlock(right)  # the right code still works after a mistake
    await shopper.expect_locked()
    await expect(error).to_be_empty()


async def test_the_page_survives_a_reload_mid_vend(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("lobby-1", price=2000, stock=3)
    await shopper.open_machine(machine.machine_id)
    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    await shopper.choose(2, total="₹40.00")
    order_id = await shopper.pay_in_test_mode("₹40.00")
    order_url = page.url

    command = await machine.next_command()
    await machine.report(command, Step("accepted", 0))
    await machine.report(command, Step("running", 1))
    await shopper.expect_state("Dispensing 1 of 2…")

    await page.reload()
    await shopper.expect_state("Dispensing 1 of 2…")
    await expect(page.locator("#progress")).to_have_attribute("value", "1")
    await screens.shot("reloaded")

    # Coming back to the machine's page points the shopper to the running order.
    await page.goto(f"{stack.url}/m/{machine.machine_id}")
    await expect(page.get_by_role("link", name="Follow your order")).to_be_visible()
    await expect(page.locator("#code-form")).to_be_hidden()
    await page.get_by_role("link", name="Follow your order").click()
    await page.wait_for_url(order_url)

    await machine.report(command, Step("succeeded", 2))
    await shopper.expect_state("Done. Enjoy!")
    assert (await stack.services.orders.view(order_id))["status"] == "dispensed"


async def test_code_only_from_the_finder_then_cancel(
    stack: Stack, provision: Provision, screens: Screens, page: Page
) -> None:
    machine = await provision("lobby-1", name="Lobby snacks", price=2500, stock=8)
    await provision("annex-9", name="Annex coffee", price=1500, stock=0, online=False)
    await page.goto(stack.url + "/")
    await expect(page).to_have_title("Find a machine · SmartVend")
    rows = page.get_by_role("listitem")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text="Annex coffee")).to_contain_text("Offline")
    await expect(rows.filter(has_text="Annex coffee")).to_contain_text("Sold out")
    await expect(rows.filter(has_text="Lobby snacks")).to_contain_text("8 in stock")
    await screens.shot("finder", doc="shopper-finder.png")

    await page.get_by_label("Enter the code on the machine's display").fill(
        await machine.display_code()
    )
    await page.get_by_role("button", name="Start").click()
    await page.wait_for_url(f"{stack.url}/m/{machine.machine_id}")
    await expect(page.get_by_role("heading", name="The machine is yours")).to_be_visible()
    assert (await stack.services.views.public_status(machine.machine_id, ""))["locked"]

    await page.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#notice")).to_have_text(
        "Cancelled. The machine is free for the next person."
    )
    await expect(page.locator("#code-form")).to_be_visible()
    await expect(page.get_by_label("Code on the machine's display")).to_be_focused()
    assert not (await stack.services.views.public_status(machine.machine_id, ""))["locked"]


async def test_busy_and_offline_machines_are_explained(
    stack: Stack, provision: Provision, browser: Browser, shopper: Shopper, page: Page
) -> None:
    machine = await provision("lobby-1", stock=8)
    first, first_errors = await phone_page(browser)
    try:
        first_shopper = Shopper(first, stack.url, shopper.screens)
        await first_shopper.open_machine(machine.machine_id)
        await first_shopper.unlock(await machine.display_code())
        await first_shopper.expect_locked()
    finally:
        await first.context.close()
    assert first_errors == []

    await shopper.open_machine(machine.machine_id)
    await expect(page.locator("#notice")).to_contain_text("Someone is using this machine")
    # The form is off while the machine is busy (tests/web/test_machine_live.py).
    await expect(page.get_by_role("button", name="Unlock")).to_be_disabled()

    idle = await provision("annex-9", name="Annex coffee", online=False)
    await page.goto(f"{stack.url}/m/{idle.machine_id}")
    await expect(page.locator("#notice")).to_have_text(
        "This machine is offline right now, so it can't sell."
    )
    await expect(page.get_by_role("button", name="Unlock")).to_be_disabled()
    await expect(page.locator("#code-off")).to_contain_text("back online")


async def test_a_failed_payment_can_be_paid_again(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("lobby-1", price=1000, stock=4)
    await shopper.open_machine(machine.machine_id)
    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    await page.get_by_role("button", name="Pay", exact=True).click()
    await page.wait_for_url(re.compile(r"/checkout/test/"))

    await page.get_by_role("button", name="Fail payment").click()
    await expect(page.locator("#checkout-error")).to_have_text(
        re.compile(r"^The payment failed, so nothing was charged\.")
    )
    await screens.shot("payment-failed")
    assert not await unfinished_commands(stack.services)

    await page.get_by_role("button", name="Pay ₹10.00").click()
    await page.wait_for_url(re.compile(r"/orders/"))
    await shopper.expect_state("Payment received")
    command = await machine.next_command()
    assert command.quantity == 1


async def test_an_ended_reservation_sends_the_shopper_back_to_the_code(
    stack: Stack, provision: Provision, shopper: Shopper, page: Page
) -> None:
    machine = await provision("lobby-1", stock=4)
    await shopper.open_machine(machine.machine_id)
    await shopper.unlock(await machine.display_code())
    await shopper.expect_locked()
    saved = await page.evaluate(f"JSON.parse(localStorage.getItem('sv_lock_{machine.machine_id}'))")
    client_id = await page.evaluate("JSON.parse(localStorage.getItem('sv_client_id'))")
    # The reservation ends behind the page's back (another tab cancelled it, say).
    await stack.services.locks.unlock(machine.machine_id, client_id, saved["session_id"])

    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page.locator("#notice")).to_have_text(
        "Your reservation ran out. The machine's display now shows a new code: "
        "enter it to start again."
    )
    await expect(page.locator("#buy")).to_be_hidden()
    await expect(page.get_by_label("Code on the machine's display")).to_be_focused()
    await shopper.unlock(await machine.display_code())  # the display shows a fresh code
    await shopper.expect_locked()


async def test_too_many_wrong_codes_make_the_shopper_wait(
    provision: Provision, shopper: Shopper, page: Page
) -> None:
    machine = await provision("lobby-1")
    right = await machine.display_code()
    wrong = f"{(int(right) + 7) % 1_000_000:06d}"
    await shopper.open_machine(machine.machine_id)
    error = page.locator("#code-error")
    for attempt in range(6):
        await shopper.unlock(wrong)
        await expect(error).not_to_be_empty()
        if attempt < 5:
            await expect(error).to_have_text(re.compile(r"^That code doesn't match"))
            await page.get_by_label("Code on the machine's display").fill("")
            await expect(error).to_be_empty()
    # One wrong code is forgiven a minute after the first (docs/security.md): the wait
    # is what is left of that minute, a few seconds less on a slow run.
    await expect(error).to_have_text(
        re.compile(
            r"^Too many wrong codes\. Please wait (1 minute|[45]\d seconds) and try again\.$"
        )
    )
    await expect(page.get_by_role("button", name="Unlock")).to_be_disabled()
    shown = await error.text_content() or ""
    await expect(error).not_to_have_text(shown)  # the wait counts down as the shopper reads
    later = re.search(r"wait (\d+) seconds", await error.text_content() or "")
    first = re.search(r"wait (\d+) seconds", shown)
    assert later is not None and (first is None or int(later.group(1)) < int(first.group(1)))

"""The order page on a phone: each item as it drops, and refunds explained as what they are."""

from playwright.async_api import Page, expect

from api.services.manual_refund import ManualRefunds
from tests.support.stack import Stack
from tests.web.browser import WEB
from tests.web.machines import Provision, Step, play, vend_then_fail
from tests.web.screens import Screens
from tests.web.shopper import Shopper

pytestmark = WEB


async def buy(shopper: Shopper, machine_id: str, code: str, quantity: int, total: str) -> str:
    await shopper.open_machine(machine_id)
    await shopper.unlock(code)
    await shopper.expect_locked()
    await shopper.choose(quantity, total=total)
    return await shopper.pay_in_test_mode(total)


async def test_each_item_shows_as_it_drops(
    provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("hall-5", name="Hall snacks", price=2000, stock=6)
    await buy(shopper, machine.machine_id, await machine.display_code(), 3, "₹60.00")
    items = page.locator("#items li")
    command = await machine.next_command()
    await machine.report(command, Step("accepted", 0))
    await shopper.expect_state("Dispensing 0 of 3…")
    await expect(items).to_have_text(
        ["Item 1 of 3: coming out…", "Item 2 of 3: waiting", "Item 3 of 3: waiting"]
    )
    await machine.report(command, Step("running", 1))
    await shopper.expect_state("Dispensing 1 of 3…")
    await expect(items).to_have_text(
        ["Item 1 of 3: out", "Item 2 of 3: coming out…", "Item 3 of 3: waiting"]
    )
    await machine.report(command, Step("running", 2))
    await shopper.expect_state("Dispensing 2 of 3…")
    await expect(page.locator("#state-detail")).to_have_text(
        "2 items out so far. Please wait at the machine and take your items from the tray."
    )
    await expect(items).to_have_text(
        ["Item 1 of 3: out", "Item 2 of 3: out", "Item 3 of 3: coming out…"]
    )
    await screens.shot("dispensing-2-of-3", doc="shopper-dispensing.png")
    await machine.report(command, Step("succeeded", 3))
    await shopper.expect_state("Done. Enjoy!")
    await expect(items).to_have_text(["Item 1 of 3: out", "Item 2 of 3: out", "Item 3 of 3: out"])


async def test_a_goodwill_refund_reads_as_one(
    stack: Stack, provision: Provision, shopper: Shopper, screens: Screens, page: Page
) -> None:
    machine = await provision("lobby-7", name="Lobby drinks", price=3000, stock=5)
    order_id = await buy(shopper, machine.machine_id, await machine.display_code(), 2, "₹60.00")
    await play(machine, [Step("accepted", 0), Step("running", 1), Step("succeeded", 2)])
    await shopper.expect_state("Done. Enjoy!")
    await expect(page.locator("#refund")).to_be_hidden()

    await ManualRefunds(stack.services.ctx).refund(order_id, 1000, by="admin")
    await page.reload()
    await shopper.expect_state("Done. Enjoy!")  # all came out: no failure in red
    await expect(page.locator("#refund-title")).to_have_text("A refund from the operator")
    detail = page.locator("#refund-detail")
    await expect(detail).to_have_text(
        "The machine's operator is refunding ₹10.00 of the ₹60.00 you paid, as a goodwill "
        "gesture. This page updates when it's sent."
    )
    await stack.services.refunds.process_pending()
    await expect(detail).to_contain_text(
        "The machine's operator has refunded ₹10.00 of the ₹60.00 you paid, as a goodwill gesture."
    )
    await screens.shot("goodwill", doc="shopper-goodwill.png")
    assert "couldn't" not in (await page.locator("main").inner_text())

    # A further refund adds up; the order still reads as a good vend.
    await ManualRefunds(stack.services.ctx).refund(order_id, 500, by="admin")
    await stack.services.refunds.process_pending()
    await page.reload()
    await expect(detail).to_contain_text("has refunded ₹15.00 of the ₹60.00 you paid")
    view = await stack.services.orders.view(order_id)
    assert (view["status"], view["refund"]) == (
        "dispensed",
        {"amount": 1500, "status": "processed", "manual_amount": 1500},
    )


async def test_a_partial_vend_refund_plus_an_operators_extra(
    stack: Stack, provision: Provision, shopper: Shopper, page: Page
) -> None:
    machine = await provision("gym-8", name="Gym bars", price=2500, stock=5)
    order_id = await buy(shopper, machine.machine_id, await machine.display_code(), 2, "₹50.00")
    await play(machine, vend_then_fail(2, dispensed=1))
    await stack.services.refunds.process_pending()
    await shopper.expect_state("Only 1 of 2 came out")
    await expect(page.locator("#items li")).to_have_text(
        ["Item 1 of 2: out", "Item 2 of 2: didn't come out"]
    )
    await ManualRefunds(stack.services.ctx).refund(order_id, 500, by="admin")
    await stack.services.refunds.process_pending()
    await page.reload()
    detail = page.locator("#refund-detail")
    await expect(detail).to_contain_text("You paid ₹50.00 and get ₹30.00 back.")
    await expect(detail).to_contain_text(
        "We have refunded ₹25.00 for the 1 item that didn't come out. "
        "The machine's operator has also refunded ₹5.00 by hand."
    )

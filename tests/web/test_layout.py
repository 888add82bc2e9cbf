"""Small phones and keyboards: no sideways scrolling at 360 px, a sensible tab order."""

from playwright.async_api import Browser, Page, expect

from tests.support.stack import Stack
from tests.web.browser import WEB, phone_page
from tests.web.machines import Provision

pytestmark = WEB

NARROW = {"width": 360, "height": 740}


async def overflow(page: Page) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth - innerWidth")
    return width


LONG_NAME = "Pantry" + "Snacks" * 14 + "Machine"  # 97 characters and not one space


async def test_every_page_fits_360_px(stack: Stack, provision: Provision, browser: Browser) -> None:
    await provision("lobby-2", name=LONG_NAME, location="Building" * 20)
    machine = await provision("lobby-1", name="A rather long machine name, third floor pantry")
    client = "layout-client-1"
    lock = await stack.services.locks.lock_by_code(
        await machine.display_code(), client, machine.machine_id
    )
    created = await stack.services.orders.create(lock.session_id, client, 2)
    context = await browser.new_context(viewport=NARROW)
    page = await context.new_page()
    try:
        for path in (
            "/",
            f"/m/{machine.machine_id}",
            "/m/unknown",
            "/m/lobby-2",
            "/nope",
            "/orders/" + "x" * 60,
            f"/checkout/test/{created.gateway_order_id}",
            f"/orders/{created.order_id}",
        ):
            await page.goto(stack.url + path)
            await expect(page.locator("h1")).to_be_visible()
            await page.wait_for_load_state("networkidle")
            assert await overflow(page) <= 0, f"{path} scrolls sideways at 360 px"
            for button in await page.get_by_role("button").all():
                if await button.is_visible():
                    box = await button.bounding_box()
                    assert box is not None and box["height"] >= 44, f"small target on {path}"
    finally:
        await context.close()


async def test_an_unknown_page_offers_a_way_back(stack: Stack, browser: Browser) -> None:
    page, errors = await phone_page(browser)
    answer = await page.goto(f"{stack.url}/nope")
    assert answer is not None and answer.status == 404
    await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    await page.get_by_role("link", name="Find a machine").click()
    await expect(page.get_by_role("heading", name="Find a machine")).to_be_visible()
    answer = await page.goto(f"{stack.url}/m/no-such-machine")
    assert answer is not None and answer.status == 404
    await expect(page.get_by_role("heading", name="Machine not found")).to_be_visible()
    await expect(page.get_by_role("link", name="Find a machine")).to_be_visible()
    await page.context.close()
    # The browser notes each 404 it was answered; nothing else went wrong.
    assert all("status of 404" in e for e in errors) and len(errors) == 2, errors


async def test_the_machine_page_tab_order(stack: Stack, provision: Provision, page: Page) -> None:
    machine = await provision("lobby-1")
    await page.goto(f"{stack.url}/m/{machine.machine_id}")
    await expect(page.locator("#machine-online")).to_contain_text("Online")
    order = []
    for _ in range(4):
        await page.keyboard.press("Tab")
        order.append(
            await page.evaluate(
                "document.activeElement.id || document.activeElement.textContent.trim()"
            )
        )
    assert order == ["Skip to content", "SmartVend", "code", "unlock"]

    await page.keyboard.press("Shift+Tab")
    await page.keyboard.type(await machine.display_code())
    await page.keyboard.press("Enter")
    heading = page.get_by_role("heading", name="The machine is yours")
    await expect(heading).to_be_focused()  # focus follows the shopper to the next step
    order = []
    for _ in range(4):
        await page.keyboard.press("Tab")
        order.append(await page.evaluate("document.activeElement.id"))
    assert order == ["quantity", "more", "pay", "cancel"]  # "fewer" is disabled at 1

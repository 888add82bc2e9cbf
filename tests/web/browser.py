"""Debian's Chromium through Playwright, phone-sized, with JavaScript errors collected.

One Chromium serves every test of ``tests/web`` (starting it costs more than
most tests), so those tests and their async fixtures share the session's event
loop: a module using the fixtures sets ``pytestmark = WEB`` (or ``LOOP``).
"""

import os
import re

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOP = pytest.mark.asyncio(loop_scope="session")
WEB = [pytest.mark.browser, LOOP]
PHONE = {"width": 390, "height": 844}
API_PATHS = re.compile(r"/(api/|create-order|verify-payment)")


def require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")


async def phone_page(browser: Browser) -> tuple[Page, list[str]]:
    """A phone-sized page in a fresh context; the errors it logs land in the list."""
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=1, locale="en-IN", timezone_id="Asia/Kolkata"
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(msg: ConsoleMessage) -> None:
        # An API error answer (a wrong code, say) is logged as a failed load; that is expected.
        url = msg.location.get("url", "")
        if msg.type == "error" and not (
            msg.text.startswith("Failed to load resource") and API_PATHS.search(url)
        ):
            errors.append(f"{msg.text} ({url})")

    page.on("console", console)
    return page, errors

"""One Chromium for the browser journeys, in the session's event loop (see tests/web/browser.py)."""

from collections.abc import AsyncIterator

import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium

expect.set_options(timeout=10_000)  # as tests/web: a loaded 2-core machine


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()

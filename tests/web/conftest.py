"""The whole server over a fresh database, Chromium, and a machine to buy from.

The async fixtures run in the session's event loop (see ``tests.web.browser``).
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.stack import Stack, running_stack
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, phone_page, require_chromium
from tests.web.machines import Provision, VendingMachine, provision_service_machine
from tests.web.screens import Screens
from tests.web.shopper import Shopper

expect.set_options(timeout=10_000)  # a loaded 2-core machine


@pytest_asyncio.fixture(loop_scope="session")
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, mqtt=False) as running:
        yield running


@pytest.fixture
def provision(stack: Stack) -> Provision:
    """``await provision(machine_id, name=..., price=..., stock=..., online=...)``."""

    async def make(*args: Any, **kwargs: Any) -> VendingMachine:
        return await provision_service_machine(stack, *args, **kwargs)

    return make


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    created, errors = await phone_page(browser)
    yield created
    await created.context.close()
    assert errors == [], f"the page logged errors: {errors}"


@pytest.fixture
def screens(page: Page, request: pytest.FixtureRequest) -> Screens:
    return Screens(page, request.node.name)


@pytest.fixture
def shopper(page: Page, stack: Stack, screens: Screens) -> Shopper:
    return Shopper(page, stack.url, screens)

"""Fixtures of the dashboard's tests."""

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.admin.browser import chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as found:
        yield found

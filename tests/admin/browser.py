"""Debian's Chromium for the dashboard's tests: one per test, desktop or phone-sized.

A missing Chromium fails the test (never skips it): CI must run these.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMG = ROOT / "docs" / "img"
PHONE = {"width": 390, "height": 844}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    assert await anyio.Path(CHROMIUM).exists(), (
        "Debian's Chromium is required: apt-get install chromium"
    )
    async with async_playwright() as p:
        found = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield found
        finally:
            await found.close()


async def phone(browser: Browser, base_url: str) -> BrowserContext:
    return await browser.new_context(
        base_url=base_url, viewport=PHONE, device_scale_factor=1, accept_downloads=True
    )


async def shot(page: Page, name: str) -> None:
    """test-artifacts/admin-NAME.png, and docs/img/ with SMARTVEND_DOC_SHOTS=1 (the shopper
    pages' switch) or SMARTVEND_DOC_SCREENSHOTS=1."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)
    if "1" in (os.environ.get("SMARTVEND_DOC_SHOTS"), os.environ.get("SMARTVEND_DOC_SCREENSHOTS")):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(DOCS_IMG / f"admin-{name}.png"), full_page=True)


async def page_width(page: Page) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width

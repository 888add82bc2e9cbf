"""Screenshots of each step: all to test-artifacts/, a chosen few to docs/img/.

The docs copies are rewritten when ``SMARTVEND_DOC_SHOTS=1`` (or when missing),
so an ordinary test run does not churn committed images.
"""

import os
import re
import shutil
from pathlib import Path

from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
DOCS = ROOT / "docs" / "img"


class Screens:
    def __init__(self, page: Page, test_name: str) -> None:
        self.page = page
        self.dir = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.count = 0

    async def shot(self, step: str, doc: str | None = None) -> Path:
        self.count += 1
        path = self.dir / f"{self.count:02d}-{step}.png"
        await self.page.screenshot(
            path=str(path), full_page=True, animations="disabled", caret="hide"
        )
        assert path.stat().st_size > 1000, "an empty screenshot"
        if doc is not None:
            target = DOCS / doc
            if os.environ.get("SMARTVEND_DOC_SHOTS") == "1" or not target.exists():
                DOCS.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        return path

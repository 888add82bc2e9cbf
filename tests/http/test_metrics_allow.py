"""``/metrics`` only to ``METRICS_ALLOW``; the source address as the shopper routes see it."""

from pathlib import Path

import httpx
import pytest

from api.errors import ConfigurationError
from tests.support.stack import running_stack
from tests.support.stack import test_settings as settings_for

OUTSIDE = "203.0.113.7"


async def scrape(url: str, forwarded_for: str | None = None) -> httpx.Response:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        return await http.get("/metrics", headers=headers)


async def test_default_is_loopback_only_and_proxied_visitors_get_404(tmp_path: Path) -> None:
    async with running_stack(tmp_path, mqtt=False, trusted_proxies="127.0.0.1") as stack:
        local = await scrape(stack.url)
        assert local.status_code == 200 and "smartvend_" in local.text
        outside = await scrape(stack.url, OUTSIDE)  # through the (trusted) proxy
        assert outside.status_code == 404
        assert outside.json()["error"]["code"] == "not_found"
        assert "smartvend_" not in outside.text
        # a visitor's own claim to be loopback, left of the proxy's entry, is not believed
        assert (await scrape(stack.url, f"127.0.0.1, {OUTSIDE}")).status_code == 404


async def test_an_untrusted_peer_cannot_forward_its_way_in(tmp_path: Path) -> None:
    async with running_stack(tmp_path, mqtt=False, metrics_allow="10.9.0.0/16") as stack:
        assert (await scrape(stack.url)).status_code == 404  # loopback not listed
        assert (await scrape(stack.url, "10.9.0.5")).status_code == 404  # peer not trusted


async def test_listed_networks_behind_a_trusted_proxy_are_served(tmp_path: Path) -> None:
    async with running_stack(
        tmp_path, mqtt=False, trusted_proxies="127.0.0.1", metrics_allow="10.9.0.0/16, ::1"
    ) as stack:
        assert (await scrape(stack.url, "10.9.3.4")).status_code == 200
        assert (await scrape(stack.url, "10.8.3.4")).status_code == 404
        assert (await scrape(stack.url)).status_code == 404  # 127.0.0.1 is not listed


def test_a_bad_entry_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="METRICS_ALLOW"):
        settings_for(tmp_path, metrics_allow="10.0.0.0/8, prometheus").validate()

"""Every shopper page over plain HTTP: status, title, escaping, friendly 404s."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from api.services.machines import NewMachine
from tests.support.stack import Stack, running_stack
from tests.web.browser import LOOP
from tests.web.machines import provision_service_machine

pytestmark = LOOP

TITLE = re.compile(r"<title>(.*?)</title>", re.S)
SCRIPT_SRC = re.compile(r'<script[^>]*\bsrc="([^"]+)"')
STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)"')


def title_of(html: str) -> str:
    found = TITLE.search(html)
    assert found, "the page has no <title>"
    return found.group(1)


async def paid_order(stack: Stack, machine_id: str, client_id: str = "client-0001") -> str:
    """An order for one unit, created through the services: returns its gateway order id."""
    machine = await provision_service_machine(stack, machine_id)
    lock = await stack.services.locks.lock_by_code(
        await machine.display_code(), client_id, machine_id
    )
    created = await stack.services.orders.create(lock.session_id, client_id, 1)
    return created.gateway_order_id


@pytest_asyncio.fixture(loop_scope="session")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        yield http


async def test_every_page_renders_with_its_title(
    stack: Stack, client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # templates are found next to the package, not here
    gateway_order_id = await paid_order(stack, "lobby-1")
    order = await stack.services.orders.get_order(None, gateway_order_id)

    pages = {
        "/": "Find a machine · SmartVend",
        "/m/lobby-1": "Lobby snacks · SmartVend",
        f"/checkout/test/{gateway_order_id}": "Test checkout · SmartVend",
        f"/orders/{order.id}": f"Order {order.id} · SmartVend",
    }
    for path, title in pages.items():
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert title_of(response.text) == title
        assert 'lang="en"' in response.text and 'name="viewport"' in response.text
        for asset in SCRIPT_SRC.findall(response.text) + STYLESHEET.findall(response.text):
            assert asset.startswith("/static/"), f"{path} loads {asset} from elsewhere"
            fetched = await client.get(asset)
            assert fetched.status_code == 200 and fetched.content, asset

    machine_page = (await client.get("/m/lobby-1")).text
    assert "₹25.00 each" in machine_page and 'autocomplete="one-time-code"' in machine_page
    assert "checkout.razorpay.com" not in machine_page  # the test gateway needs no script
    checkout = (await client.get(f"/checkout/test/{gateway_order_id}")).text
    assert "TEST MODE" in checkout and "₹25.00" in checkout


async def test_pages_and_assets_stay_small(client: httpx.AsyncClient) -> None:
    for asset in (
        "app.css",
        "js/common.js",
        "js/home.js",
        "js/machine.js",
        "js/order.js",
        "js/test-checkout.js",
    ):
        response = await client.get(f"/static/{asset}")
        assert response.status_code == 200
        assert len(response.content) < 12_000, f"{asset} grew to {len(response.content)} bytes"


async def test_unknown_things_get_a_friendly_404(stack: Stack, client: httpx.AsyncClient) -> None:
    cases = {
        "/m/no-such-machine": "Machine not found",
        "/m/not%20a%20machine%21": "Machine not found",
        "/orders/ord_missing": "Order not found",
        "/checkout/test/order_missing": "Payment not found",
    }
    for path, heading in cases.items():
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert title_of(response.text) == f"{heading} · SmartVend"
        assert f"<h1>{heading}</h1>" in response.text
        assert 'href="/"' in response.text  # a way back to the machine finder
    assert "no-such-machine" in (await client.get("/m/no-such-machine")).text
    # An unknown address: a page with a way back for a browser, JSON for the API and scripts.
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = await client.get("/nope", headers=html)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert title_of(page.text) == "Page not found · SmartVend" and 'href="/"' in page.text
    admin = await client.get("/admin/nope", headers=html)
    assert admin.status_code == 404 and 'href="/admin"' in admin.text
    for path, headers in (("/api/nope", html), ("/nope", {"Accept": "application/json"})):
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"


async def test_a_machine_name_is_escaped(stack: Stack, client: httpx.AsyncClient) -> None:
    name = '<script>alert("pwned")</script>'
    await stack.services.machines.register(
        NewMachine(
            machine_id="evil-1",
            name=name,
            price_amount=1000,
            capacity=5,
            stock=2,
            location="<img src=x onerror=alert(1)>",
        )
    )
    for path in ("/", "/m/evil-1"):
        html = (await client.get(path)).text
        assert name not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(" in html, path
    assert title_of((await client.get("/m/evil-1")).text).startswith("&lt;script&gt;")


async def test_live_payments_load_razorpay_checkout_and_hide_the_test_one(tmp_path: Path) -> None:
    async with running_stack(
        tmp_path,
        mqtt=False,
        razorpay_key_id="rzp_test_abc",
        razorpay_key_secret="s3cret-key-for-tests",
        razorpay_base_url="http://127.0.0.1:9",
    ) as stack:
        await provision_service_machine(stack, "lobby-1")
        async with httpx.AsyncClient(base_url=stack.url) as http:
            machine_page = (await http.get("/m/lobby-1")).text
            scripts = SCRIPT_SRC.findall(machine_page)
            assert "https://checkout.razorpay.com/v1/checkout.js" in scripts
            assert all(s.startswith("/static/") for s in scripts if "razorpay" not in s)
            checkout = await http.get("/checkout/test/order_anything")
            assert checkout.status_code == 404
            assert "No test checkout" in checkout.text


async def test_dev_mode_shows_the_simulated_display_and_other_modes_do_not(
    tmp_path: Path,
) -> None:
    for env, shown in (("dev", True), ("test", False)):
        (tmp_path / env).mkdir()
        async with running_stack(tmp_path / env, mqtt=False, env=env) as stack:
            simulated = await provision_service_machine(stack, "sim-1", simulated=True)
            real = await provision_service_machine(stack, "lobby-1")
            async with httpx.AsyncClient(base_url=stack.url) as http:
                page = (await http.get("/m/sim-1")).text
                assert ('id="demo-display"' in page) is shown
                assert (await simulated.display_code() in page) is shown
                # A real machine's code is never shown, whatever the mode.
                page = (await http.get("/m/lobby-1")).text
                assert 'id="demo-display"' not in page
                assert await real.display_code() not in page


async def test_the_browsers_own_favicon_request_gets_the_icon(client: httpx.AsyncClient) -> None:
    answer = await client.get("/favicon.ico", follow_redirects=True)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.content.lstrip().startswith(b"<svg")

"""The server with the dashboard mounted, a logged-in client, and vends made through services."""

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

from api.app import create_app
from api.services.container import Services
from api.services.machines import NewMachine
from schema.models import Machine
from tests.support.services import unfinished_commands
from tests.support.stack import ADMIN_PASSWORD, Stack, create_schema, test_settings
from tests.support.uvicorn_server import serve
from web.admin.routes import routes

CSRF = re.compile(r'name="csrf" value="([0-9a-f]*)"')


@contextlib.asynccontextmanager
async def admin_stack(tmp: Path, *, mqtt: bool = False, **kwargs: Any) -> AsyncIterator[Stack]:
    """The API plus the admin pages on a free port; ``kwargs`` as ``running_stack``'s."""
    app_kwargs = {k: kwargs.pop(k) for k in ("clock", "gateway") if k in kwargs}
    settings = test_settings(tmp, **kwargs)
    await create_schema(settings)
    app = create_app(settings, routes=routes(), mqtt=mqtt, **app_kwargs)
    async with serve(app) as url:
        yield Stack(url=url, app=app, settings=settings)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


async def login(
    client: httpx.AsyncClient, username: str = "admin", password: str = ADMIN_PASSWORD
) -> httpx.Response:
    page = await client.get("/admin/login")
    return await client.post(
        "/admin/login",
        data={
            "username": username,
            "password": password,
            "csrf": csrf_of(page.text),
            "next": "/admin",
        },
    )


@contextlib.asynccontextmanager
async def admin_client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        answer = await login(client)
        assert answer.status_code == 303, answer.text
        yield client


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Submit a form the way a browser would: with the CSRF token of ``page``."""
    html = (await client.get(page)).text
    return await client.post(action, data={**data, "csrf": csrf_of(html)})


async def register(
    services: Services,
    mid: str,
    *,
    stock: int = 5,
    capacity: int = 10,
    name: str = "Lobby",
    online: bool = True,
) -> str:
    _, key = await services.machines.register(
        NewMachine(machine_id=mid, name=name, price_amount=2500, capacity=capacity, stock=stock)
    )
    if online:
        await services.machines.apply_status(mid, {"state": "online", "boot": 1, "fw": "1.0.0"})
    return key


async def vend(
    services: Services,
    mid: str,
    quantity: int = 1,
    *,
    dispensed: int | None = None,
    client_id: str = "client-00001",
) -> str:
    """A whole sale through the services: lock, order, payment, the machine's result."""
    await services.sweeper.tick()  # a code the clock moved past is replaced first
    async with services.ctx.db.begin() as s:
        machine = await s.get(Machine, mid)
        assert machine is not None and machine.display_code is not None
        code = machine.display_code
    lock = await services.locks.lock_by_code(code, client_id)
    created = await services.orders.create(lock.session_id, client_id, quantity)
    gateway: Any = services.gateway
    proof = gateway.complete_payment(created.gateway_order_id)
    await services.orders.verify(
        proof["razorpay_order_id"], proof["razorpay_payment_id"], proof["razorpay_signature"]
    )
    command = next(c for c in await unfinished_commands(services) if c.order_id == created.order_id)
    out = quantity if dispensed is None else dispensed
    status = "succeeded" if out == quantity else "failed"
    await services.dispense.apply_result(
        mid, command.id, status, out, None if out == quantity else "motor jam"
    )
    return created.order_id


async def wait_fleet_row(
    client: httpx.AsyncClient,
    mid: str,
    check: Callable[[dict[str, Any]], bool],
    within_s: float = 10.0,
) -> dict[str, Any]:
    """Read the live fleet stream until ``mid``'s row passes ``check`` (e.g. comes online)."""
    with anyio.fail_after(within_s):
        async with client.stream(
            "GET", "/admin/events", headers={"Accept": "text/event-stream"}
        ) as stream:
            assert stream.status_code == 200
            event = ""
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "fleet":
                    for row in json.loads(line[6:]):
                        if row["id"] == mid and check(row):
                            return dict(row)
    raise AssertionError("the stream ended")

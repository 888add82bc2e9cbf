"""What the end-to-end tests do over and over: register a machine, read its LCD,
buy through the shopper's HTTP API, and follow the order to its end."""

import asyncio
import contextlib
import inspect
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx

from api.services.container import Services
from api.services.machines import NewMachine
from device.simulator import Fleet
from device.virtual import VirtualMachine
from tests.support.stack import Stack

CODE = re.compile(r"^Code (\d{6})$")
# where an order rests (refund_pending: until the gateway confirms the refund)
TERMINAL = ("dispensed", "refunded", "expired", "failed", "refund_pending")
WAIT_S = 20.0  # a loaded 2-core machine


async def register(
    services: Services, mid: str, *, stock: int = 5, price: int = 2500, capacity: int = 10
) -> str:
    """Register a machine through the services; returns its API key."""
    _, key = await services.machines.register(
        NewMachine(
            machine_id=mid,
            name=f"Machine {mid}",
            price_amount=price,
            capacity=capacity,
            stock=stock,
        )
    )
    return key


@contextlib.asynccontextmanager
async def fleet(
    port: int, machines: Iterable[tuple[str, str]], **faults: Any
) -> AsyncIterator[Fleet]:
    """Simulated machines on ``127.0.0.1:port``, fast motors, short thank-you messages."""
    running = Fleet(
        list(machines),
        "127.0.0.1",
        port,
        motor_ms=100,
        settle_ms=30,
        seed=7,
        connect_spread_s=0,
        **faults,
    )
    for vm in running.machines.values():
        vm.config["message_s"] = 1
        vm.controller.config["message_s"] = 1
    async with running:
        await running.wait_online(WAIT_S)
        yield running


async def until(check: Callable[[], Any], what: str, within: float = WAIT_S) -> Any:
    """Poll ``check`` (a database row has no event to await) until it returns something true."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def bridge_up(stack: Stack) -> None:
    """Wait until the server's bridge is connected to the broker."""
    async with asyncio.timeout(WAIT_S):
        await stack.runtime.mqtt.bridge.connected.wait()


async def wait_status(
    services: Services, mid: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Wait until the machine's public status (read from the database) passes ``check``."""

    async def current() -> dict[str, Any] | None:
        status = await services.views.public_status(mid, "")
        return status if check(status) else None

    found: dict[str, Any] = await until(current, f"{mid} {what}")
    return found


async def wait_online(services: Services, mid: str) -> None:
    await wait_status(services, mid, lambda s: s["online"], "online in the database")


def shown_code(vm: VirtualMachine) -> str | None:
    found = CODE.match(vm.lcd[0])
    return found.group(1) if found else None


async def lcd_code(
    vm: VirtualMachine, *, other_than: str | None = None, within: float = WAIT_S
) -> str:
    """The code the machine's LCD shows (a new one when ``other_than`` is given)."""
    await vm.wait_for(lambda: shown_code(vm) not in (None, other_than), within)
    code = shown_code(vm)
    assert code is not None
    return code


async def buy(
    http: httpx.AsyncClient, code: str, quantity: int, client_id: str = "e2e-shopper-1"
) -> dict[str, Any]:
    """The shopper's whole HTTP flow up to a verified payment; returns the verify answer."""
    lock = await http.post("/api/lock-by-code", json={"code": code, "client_id": client_id})
    assert lock.status_code == 200, lock.text
    session_id = lock.json()["session_id"]
    created = await http.post(
        "/create-order",
        json={"session_id": session_id, "client_id": client_id, "quantity": quantity},
    )
    assert created.status_code == 200, created.text
    order = created.json()
    assert (
        order["gateway"] == "test" and order["amount"] == quantity * lock.json()["price"]["amount"]
    )
    paid = await http.post(
        "/api/test-gateway/checkout",
        json={"gateway_order_id": order["gateway_order_id"], "outcome": "pay"},
    )
    assert paid.status_code == 200, paid.text
    verified = await http.post("/verify-payment", json=paid.json())
    assert verified.status_code == 200, verified.text
    answer: dict[str, Any] = verified.json()
    assert answer["order_id"] == order["order_id"]
    return answer


async def order_events(
    http: httpx.AsyncClient, order_id: str, until_: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Follow the order's Server-Sent Events until a view passes ``until_``; all views seen."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT_S):
        async with http.stream("GET", f"/api/orders/{order_id}/events") as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if until_(seen[-1]):
                        return seen
    raise AssertionError(f"the order stream ended at {seen[-1:]}")


async def order_ends(http: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    return await order_events(http, order_id, lambda view: view["status"] in TERMINAL)

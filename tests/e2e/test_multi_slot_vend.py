"""A cart of several products on the whole server: embedded broker, SQLite, real HTTP,
and a small machine in the test that answers the command with per-line counts."""

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from sqlalchemy import select

from api.services.catalogue import ProductFields
from api.services.slots import SlotPlan
from schema import messages, topics
from schema.models import Machine
from tests.e2e import flow
from tests.e2e.external import external_stack
from tests.support.stack import Stack, running_stack

pytest_plugins = ["tests.support.db_fixtures"]
MID = "snack-e2e"


async def snack_planogram(stack: Stack) -> dict[str, str]:
    """Three products on a registered machine: A1 Cola 20.00, A2 Chips 15.00, B1 Candy 10.00."""
    catalogue = stack.services.catalogue
    ids = {
        name: (await catalogue.create(ProductFields(name=name, price_amount=amount)))["id"]
        for name, amount in (("Cola", 2000), ("Chips", 1500), ("Candy", 1000))
    }
    plan = [
        SlotPlan("A1", 0, ids["Cola"], capacity=8, par=6, stock=5),
        SlotPlan("A2", 1, ids["Chips"], capacity=8, par=6, stock=4),
        SlotPlan("B1", 2, ids["Candy"], capacity=8, par=6, stock=3),
    ]
    await stack.services.slots.put(MID, 0, plan)
    return ids


async def machine(
    port: int, key: str, counts: dict[str, int], commands: "asyncio.Queue[dict[str, Any]]"
) -> None:
    """Online, then answers every command: accepted, running, and a final status with
    per-line counts (``counts``: units that fall per slot; fewer than asked is a jam)."""
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        username=MID,
        password=key,
        identifier=MID,
        protocol=aiomqtt.ProtocolVersion.V311,
    ) as client:
        await client.subscribe(topics.machine_filter("cmd", MID), qos=1)
        now = int(time.time())
        await client.publish(
            topics.status(MID), messages.status_online(1, "1.1.0", now), qos=1, retain=True
        )
        async for message in client.messages:
            if not message.payload:
                continue  # a finished command's retained copy cleared
            assert isinstance(message.payload, bytes)
            cmd = json.loads(message.payload)
            await commands.put(cmd)
            result = topics.result(MID, cmd["cmd_id"])

            async def send(
                status: str, lines: list[dict[str, Any]], cmd: Any = cmd, result: str = result
            ) -> None:
                body = {
                    "cmd_id": cmd["cmd_id"],
                    "status": status,
                    "dispensed": sum(line["dispensed"] for line in lines),
                    "lines": lines,
                    "ts": int(time.time()),
                }
                if status == "failed":
                    body["error"] = "jam"
                await client.publish(result, json.dumps(body).encode(), qos=1)

            await send("accepted", [])
            lines = [{"slot": slot, "dispensed": n} for slot, n in counts.items()]
            await send("running", lines)
            total = sum(counts.values())
            await send("succeeded" if total == cmd["quantity"] else "failed", lines)


async def test_a_cart_of_three_products_with_a_jam_on_the_middle_line(tmp_path: Path) -> None:
    async with (
        running_stack(tmp_path, mqtt=True) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        key = await flow.register(stack.services, MID, stock=1)
        await buy_a_cart(stack, http, stack.settings.mqtt_port, key)


@pytest.mark.postgres
@pytest.mark.mosquitto
async def test_the_same_cart_on_postgres_and_mosquitto(tmp_path: Path, postgresql_url: str) -> None:
    async with (
        external_stack(tmp_path, postgresql_url, [(MID, 1)]) as ext,
        httpx.AsyncClient(base_url=ext.stack.url, timeout=10) as http,
    ):
        await flow.bridge_up(ext.stack)
        await buy_a_cart(ext.stack, http, ext.mqtt_port, ext.keys[MID])


async def buy_a_cart(stack: Stack, http: httpx.AsyncClient, port: int, key: str) -> None:
    """Cola x2, Chips x1, Candy x2 bought over HTTP; the chips jam, the machine goes on."""
    ids = await snack_planogram(stack)
    commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    # Cola 2 of 2, the chips jam (0 of 1), the machine goes on: Candy 2 of 2.
    counts = {"A1": 2, "A2": 0, "B1": 2}
    running = asyncio.create_task(machine(port, key, counts, commands))
    try:
        await flow.wait_online(stack.services, MID)
        status = (await http.get(f"/api/machine/{MID}/public-status")).json()
        assert [(s["id"], s["stock"]) for s in status["slots"]] == [
            ("A1", 5),
            ("A2", 4),
            ("B1", 3),
        ]
        code = await display_code(stack)
        lock = await http.post("/api/lock-by-code", json={"code": code, "client_id": "e2e-cart-1"})
        assert lock.status_code == 200, lock.text
        items = [
            {"slot": "A1", "quantity": 2},
            {"slot": "A2", "quantity": 1},
            {"slot": "B1", "quantity": 2},
        ]
        created = await http.post(
            "/create-order",
            json={
                "session_id": lock.json()["session_id"],
                "client_id": "e2e-cart-1",
                "items": items,
            },
        )
        assert created.status_code == 200, created.text
        order = created.json()
        assert order["amount"] == 2 * 2000 + 1500 + 2 * 1000
        paid = await http.post(
            "/api/test-gateway/checkout",
            json={"gateway_order_id": order["gateway_order_id"], "outcome": "pay"},
        )
        assert (await http.post("/verify-payment", json=paid.json())).status_code == 200

        async with asyncio.timeout(flow.WAIT_S):
            cmd = await commands.get()
        assert cmd["quantity"] == 5 and cmd["order"] == order["order_id"]
        assert cmd["lines"] == [
            {"slot": "A1", "motor": 0, "quantity": 2},
            {"slot": "A2", "motor": 1, "quantity": 1},
            {"slot": "B1", "motor": 2, "quantity": 2},
        ]
        final = (await flow.order_ends(http, order["order_id"]))[-1]
        assert final["dispensed"] == 4
        assert [(ln["slot"], ln["quantity"], ln["dispensed"]) for ln in final["lines"]] == [
            ("A1", 2, 2),
            ("A2", 1, 0),
            ("B1", 2, 2),
        ]
        assert final["refund"]["amount"] == 1500  # the chips that did not fall
        after = (await http.get(f"/api/machine/{MID}/public-status")).json()
        assert [(s["id"], s["stock"]) for s in after["slots"]] == [
            ("A1", 3),
            ("A2", 4),
            ("B1", 1),
        ]
        assert after["stock"] == 8 and not after["locked"]
        assert ids["Cola"] == after["slots"][0]["product"]["id"]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def display_code(stack: Stack) -> str:
    async with stack.services.ctx.db() as s:
        code = await s.scalar(select(Machine.display_code).where(Machine.id == MID))
    assert code is not None
    return code

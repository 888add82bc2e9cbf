"""Several products per machine over HTTP: catalogue, planograms, carts, restock, pick lists,
on SQLite and PostgreSQL."""

import csv
import io
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.payments.test_gateway import TestGateway
from api.services.machines import NewMachine
from api.services.slots import Slots
from schema.models import Alert, Command, Machine, OrderLine
from tests.http.conftest import CLIENT, display_code
from tests.http.test_admin_api import token
from tests.http.test_shopper_api import assert_error
from tests.support.stack import Stack, running_stack

pytest_plugins = ["tests.support.db_fixtures"]


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    """The server on SQLite and on PostgreSQL (row locks, constraints and sums differ)."""
    async with running_stack(tmp_path, mqtt=False, database_url=database_url) as running:
        yield running


def png(width: int = 2, height: int = 2) -> bytes:
    """A real, tiny PNG (grey pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def admin(http: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token(http)}"}


async def product(
    http: httpx.AsyncClient, admin: dict[str, str], name: str, amount: int, sku: str | None = None
) -> str:
    r = await http.post(
        "/api/products",
        json={"name": name, "price": {"amount": amount, "currency": "INR"}, "sku": sku},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def row(slot: str, motor: int, product_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": slot, "motor": motor, "product": product_id, "capacity": 8, "par": 6, **extra}


async def snack_machine(
    http: httpx.AsyncClient, admin: dict[str, str], mid: str = "lobby-1"
) -> dict[str, str]:
    """Three slots: A1 Cola 20.00, A2 Chips 15.00 (own price 12.00), B1 Water 10.00."""
    cola = await product(http, admin, "Cola 330 ml", 2000, "COLA-330")
    chips = await product(http, admin, "Chips", 1500)
    water = await product(http, admin, "Water", 1000)
    version = (await http.get(f"/api/machine/{mid}/slots", headers=admin)).json()["version"]
    r = await http.put(
        f"/api/machine/{mid}/slots",
        json={
            "version": version,
            "slots": [
                row("A1", 0, cola, stock=5),
                row("A2", 1, chips, stock=2, price_override=1200),
                row("B1", 2, water, stock=0),
            ],
        },
        headers=admin,
    )
    assert r.status_code == 200, r.text
    return {"cola": cola, "chips": chips, "water": water}


async def lock(stack: Stack, http: httpx.AsyncClient, mid: str) -> dict[str, Any]:
    code = await display_code(stack, mid)
    r = await http.post(
        "/api/lock-by-code", json={"code": code, "client_id": CLIENT, "machine_id": mid}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def order(http: httpx.AsyncClient, session: str, **body: Any) -> httpx.Response:
    return await http.post(
        "/create-order", json={"session_id": session, "client_id": CLIENT, **body}
    )


async def machine_row(stack: Stack, mid: str) -> Machine:
    async with stack.services.ctx.db() as s:
        found = await s.get(Machine, mid)
    assert found is not None
    return found


async def test_products_and_their_images(
    stack: Stack, http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    body = {"name": "Cola", "price": {"amount": 2000, "currency": "INR"}, "sku": "C1"}
    assert_error(await http.post("/api/products", json=body), 401, "unauthorized")
    cola = await product(http, admin, "Cola", 2000, "C1")
    assert_error(await http.post("/api/products", json=body, headers=admin), 409, "sku_exists")
    long = {**body, "name": "x" * 41, "sku": None}
    assert_error(await http.post("/api/products", json=long, headers=admin), 400, "invalid_request")
    cheap = {**body, "sku": None, "price": {"amount": 50, "currency": "INR"}}
    assert_error(
        await http.post("/api/products", json=cheap, headers=admin), 400, "invalid_request"
    )
    r = await http.put(
        f"/api/products/{cola}",
        json={**body, "name": "Cola 330 ml", "active": False},
        headers=admin,
    )
    assert r.json()["name"] == "Cola 330 ml" and r.json()["active"] is False
    listed = (await http.get("/api/products", headers=admin)).json()["products"]
    assert [p["name"] for p in listed] == ["Cola 330 ml", "Lobby"]  # Lobby: the v1 machine's
    assert_error(
        await http.put("/api/products/prd_nope", json=body, headers=admin), 404, "product_not_found"
    )

    picture = png()
    url = f"/api/products/{cola}/image"
    assert_error(await http.put(url, content=picture), 401, "unauthorized")
    r = await http.put(url, content=picture, headers=admin)
    assert r.status_code == 200
    image_url = r.json()["image_url"]
    assert image_url.startswith(url + "?v=")
    served = await http.get(image_url)
    assert served.status_code == 200 and served.content == picture
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]
    # What an upload claims does not count: the first bytes decide.
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    headers = {**admin, "Content-Type": "image/png"}
    assert_error(await http.put(url, content=svg, headers=headers), 400, "invalid_request")
    assert_error(
        await http.put(url, content=b"GIF89a" + b"\0" * 20, headers=admin), 400, "invalid_request"
    )
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 100
    r = await http.put(url, content=jpeg, headers=admin)
    assert r.json()["image_url"] != image_url
    assert (await http.get(r.json()["image_url"])).headers["content-type"] == "image/jpeg"
    # Bigger than the server's 16 KiB body limit, within the image limit of 256 KiB.
    webp = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 100_000
    assert (await http.put(url, content=webp, headers=admin)).status_code == 200
    too_big = b"\x89PNG\r\n\x1a\n" + b"\0" * (256 * 1024)
    assert_error(await http.put(url, content=too_big, headers=admin), 413, "payload_too_large")
    assert_error(await http.get("/api/products/prd_nope/image"), 404, "product_not_found")


async def test_planogram_editor_rules(
    stack: Stack, http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    first = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()
    assert first["version"] == 0
    [one] = first["slots"]
    assert (one["id"], one["motor"], one["capacity"], one["par"], one["stock"]) == (
        "1",
        0,
        10,
        10,
        5,
    )
    assert one["price"] == {"amount": 2500, "currency": "INR"} and one["price_override"] is None
    ids = await snack_machine(http, admin)
    plan = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()
    assert plan["version"] == 1
    assert [(s["id"], s["motor"], s["stock"]) for s in plan["slots"]] == [
        ("A1", 0, 5),
        ("A2", 1, 2),
        ("B1", 2, 0),
    ]
    assert (
        plan["slots"][1]["price"]["amount"] == 1200 and plan["slots"][1]["price_override"] == 1200
    )

    def put(version: int, slots: list[dict[str, Any]]) -> Any:
        return http.put(
            f"/api/machine/{machine}/slots",
            json={"version": version, "slots": slots},
            headers=admin,
        )

    cola, chips = ids["cola"], ids["chips"]
    # Someone else saved meanwhile: the stale editor is told, nothing changes.
    assert_error(await put(0, [row("A1", 0, cola)]), 409, "planogram_changed")
    assert_error(await put(1, [row("A1", 0, cola), row("A2", 0, chips)]), 400, "invalid_request")
    assert_error(await put(1, [row("A1", 0, cola), row("A1", 1, chips)]), 400, "invalid_request")
    assert_error(await put(1, [row("a1", 0, cola)]), 400, "invalid_request")
    assert_error(await put(1, [row("A1", 0, cola, par=9)]), 400, "invalid_request")
    assert_error(await put(1, [row("A1", 0, "prd_missing")]), 400, "invalid_request")
    assert_error(await put(1, [row("A1", 0, cola, price_override=10)]), 400, "invalid_request")
    unchanged = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()
    assert unchanged == plan

    # The machine's v1 view: the lowest enabled price and the totals.
    m = await machine_row(stack, machine)
    assert (m.price_amount, m.stock, m.capacity) == (1000, 7, 24)
    assert m.desired_slots is not None
    assert m.desired_slots[0]["product"] == {"id": cola, "name": "Cola 330 ml", "image_url": None}
    assert [{k: v for k, v in slot.items() if k != "product"} for slot in m.desired_slots] == [
        {
            "id": "A1",
            "motor": 0,
            "name": "Cola 330 ml",
            "price": {"amount": 2000, "currency": "INR"},
            "stock": 5,
            "enabled": True,
        },
        {
            "id": "A2",
            "motor": 1,
            "name": "Chips",
            "price": {"amount": 1200, "currency": "INR"},
            "stock": 2,
            "enabled": True,
        },
        {
            "id": "B1",
            "motor": 2,
            "name": "Water",
            "price": {"amount": 1000, "currency": "INR"},
            "stock": 0,
            "enabled": True,
        },
    ]
    # Swapping motors keeps the shopper's ids and the stock of slots that keep their product.
    swapped = [
        row("A1", 1, cola),
        row("A2", 0, chips, price_override=1200),
        row("B1", 2, ids["water"], enabled=False),
    ]
    r = await put(1, swapped)
    assert r.status_code == 200
    assert [(s["id"], s["motor"], s["stock"]) for s in r.json()["slots"]] == [
        ("A1", 1, 5),
        ("A2", 0, 2),
        ("B1", 2, 0),
    ]
    m2 = await machine_row(stack, machine)
    assert m2.price_amount == 1200  # B1 is disabled: not the lowest price any more
    assert m2.desired_version > m.desired_version
    # A product's price change reaches the machines selling it.
    await http.put(
        f"/api/products/{cola}",
        json={"name": "Cola 330 ml", "price": {"amount": 2200, "currency": "INR"}},
        headers=admin,
    )
    m3 = await machine_row(stack, machine)
    assert m3.desired_slots is not None and m3.desired_slots[0]["price"]["amount"] == 2200


async def test_planogram_change_during_a_session_reaches_the_machine_at_its_end(
    stack: Stack, http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    ids = await snack_machine(http, admin)
    held = await lock(stack, http, machine)
    before = (await machine_row(stack, machine)).desired_slots
    plan = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()
    r = await http.put(
        f"/api/machine/{machine}/slots",
        json={"version": plan["version"], "slots": [row("A1", 0, ids["cola"], stock=3)]},
        headers=admin,
    )
    assert r.status_code == 200
    assert (await machine_row(stack, machine)).desired_slots == before
    await http.post(
        f"/api/machine/{machine}/unlock",
        json={"client_id": CLIENT, "session_id": held["session_id"]},
    )
    after = (await machine_row(stack, machine)).desired_slots
    assert after is not None and [s["id"] for s in after] == ["A1"] and after[0]["stock"] == 3


async def test_cart_rules_and_lines(
    stack: Stack, http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    await snack_machine(http, admin)
    status = (await http.get(f"/api/machine/{machine}/public-status")).json()
    assert [
        (s["id"], s["product"]["name"], s["price"]["amount"], s["stock"]) for s in status["slots"]
    ] == [
        ("A1", "Cola 330 ml", 2000, 5),
        ("A2", "Chips", 1200, 2),
        ("B1", "Water", 1000, 0),
    ]
    assert all("motor" not in s for s in status["slots"])
    held = await lock(stack, http, machine)
    assert held["max_quantity"] == 5 and held["slots"] == status["slots"]
    session = held["session_id"]
    assert_error(await order(http, session, quantity=1), 400, "items_required")
    two_a1 = [{"slot": "A1", "quantity": 1}, {"slot": "A1", "quantity": 1}]
    assert_error(await order(http, session, items=two_a1), 400, "invalid_items")
    many = [{"slot": "A1", "quantity": 5}, {"slot": "A2", "quantity": 2}]
    assert_error(await order(http, session, items=many), 400, "invalid_items")  # 7 > 5 units
    assert_error(
        await order(http, session, items=[{"slot": "Z9", "quantity": 1}]), 400, "invalid_items"
    )
    assert_error(
        await order(http, session, items=[{"slot": "a1", "quantity": 1}]), 400, "invalid_items"
    )
    r = await order(http, session, items=[{"slot": "A2", "quantity": 3}])
    assert_error(r, 409, "insufficient_stock")
    assert r.json()["error"]["slot"] == "A2"
    r = await order(http, session, items=[{"slot": "B1", "quantity": 1}])
    assert_error(r, 409, "insufficient_stock")
    assert r.json()["error"]["slot"] == "B1"

    r = await order(
        http, session, items=[{"slot": "A1", "quantity": 2}, {"slot": "A2", "quantity": 1}]
    )
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["amount"] == 2 * 2000 + 1200
    view = (await http.get(f"/api/orders/{created['order_id']}")).json()
    assert view["quantity"] == 3 and view["amount"] == 5200
    assert view["lines"] == [
        {
            "slot": "A1",
            "product": {"id": view["lines"][0]["product"]["id"], "name": "Cola 330 ml"},
            "quantity": 2,
            "dispensed": 0,
            "unit_amount": 2000,
        },
        {
            "slot": "A2",
            "product": {"id": view["lines"][1]["product"]["id"], "name": "Chips"},
            "quantity": 1,
            "dispensed": 0,
            "unit_amount": 1200,
        },
    ]
    # A price change after the order never touches it.
    plan = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()
    slots = [
        row(s["id"], s["motor"], s["product"]["id"], price_override=1900, enabled=s["id"] != "A2")
        for s in plan["slots"]
    ]
    await http.put(
        f"/api/machine/{machine}/slots",
        json={"version": plan["version"], "slots": slots},
        headers=admin,
    )
    assert (await http.get(f"/api/orders/{created['order_id']}")).json()["lines"][0][
        "unit_amount"
    ] == 2000
    r = await order(http, session, items=[{"slot": "A2", "quantity": 1}])
    assert_error(r, 409, "slot_unavailable")
    assert r.json()["error"]["slot"] == "A2"


async def test_a_multi_line_vend_settles_per_line(
    stack: Stack, http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    """Cola x2 and Chips x1; the machine jams after one cola and still drops the chips."""
    await snack_machine(http, admin)
    held = await lock(stack, http, machine)
    r = await order(
        http,
        held["session_id"],
        items=[{"slot": "A1", "quantity": 2}, {"slot": "A2", "quantity": 1}],
    )
    created = r.json()
    gateway = stack.services.gateway
    assert isinstance(gateway, TestGateway)
    proof = gateway.complete_payment(str(created["gateway_order_id"]))
    assert (await http.post("/verify-payment", json=proof)).status_code == 200
    async with stack.services.ctx.db() as s:
        command = await s.scalar(select(Command).where(Command.order_id == created["order_id"]))
    assert command is not None and command.quantity == 3
    lines = [{"slot": "A1", "dispensed": 1}, {"slot": "A2", "dispensed": 1}]
    assert await stack.services.dispense.apply_result(
        machine, command.id, "failed", 2, "jam", lines
    )
    view = (await http.get(f"/api/orders/{created['order_id']}")).json()
    assert [(ln["slot"], ln["dispensed"]) for ln in view["lines"]] == [("A1", 1), ("A2", 1)]
    assert view["dispensed"] == 2
    assert view["refund"]["amount"] == 2000  # one cola, at its own price
    plan = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()
    assert [(s["id"], s["stock"]) for s in plan["slots"]] == [("A1", 4), ("A2", 1), ("B1", 0)]
    m = await machine_row(stack, machine)
    assert (
        m.stock == 5 and m.stock == m.restocked_total - m.dispensed_total + 5
    )  # 5: stock at registration
    sales = (await http.get("/api/reports/sales", headers=admin)).json()
    assert [(p["product"]["name"], p["units"], p["amount"]) for p in sales["by_product"]] == [
        ("Cola 330 ml", 1, 2000),
        ("Chips", 1, 1200),
    ]
    assert [(x["slot"], x["units"]) for x in sales["by_slot"]] == [("A1", 1), ("A2", 1)]
    # The dashboard's takings count each line at its own price (not the order's average).
    [fleet_row] = [r for r in await stack.services.admin_views.fleet() if r.machine_id == machine]
    assert (fleet_row.units_today, fleet_row.sales_today) == (2, 3200)
    amounts, units = await stack.services.fleet_stats.sales_per_day(14, machine)
    assert sum(amounts.values.values()) == 3200 and sum(units.values.values()) == 2
    detail = await stack.services.order_views.detail(created["order_id"])
    assert detail.undispensed_amount == 2000
    created_step = next(step for step in detail.timeline if step.title == "Order created")
    assert created_step.detail.startswith(
        "A1 Cola 330 ml 2 x ₹20.00, A2 Chips 1 x ₹12.00 = ₹52.00 via test"
    )


async def test_per_line_counts_that_do_not_add_up_fall_back_to_line_order(
    stack: Stack, http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    await snack_machine(http, admin)
    held = await lock(stack, http, machine)
    items = [{"slot": "A1", "quantity": 1}, {"slot": "A2", "quantity": 2}]
    created = (await order(http, held["session_id"], items=items)).json()
    gateway = stack.services.gateway
    assert isinstance(gateway, TestGateway)
    await http.post(
        "/verify-payment", json=gateway.complete_payment(str(created["gateway_order_id"]))
    )
    async with stack.services.ctx.db() as s:
        command = await s.scalar(select(Command).where(Command.order_id == created["order_id"]))
    assert command is not None
    await stack.services.dispense.apply_result(machine, command.id, "failed", 2, None, None)
    async with stack.services.ctx.db() as s:
        out = (await s.scalars(select(OrderLine.dispensed).order_by(OrderLine.position))).all()
    assert list(out) == [1, 1]
    view = (await http.get(f"/api/orders/{created['order_id']}")).json()
    assert view["refund"]["amount"] == 1200


async def test_lock_refused_only_when_every_enabled_slot_is_empty(
    stack: Stack, http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    ids = await snack_machine(http, admin)
    plan = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()
    slots = [
        row("A1", 0, ids["cola"], stock=0),
        row("A2", 1, ids["chips"], stock=4, enabled=False),
    ]
    await http.put(
        f"/api/machine/{machine}/slots",
        json={"version": plan["version"], "slots": slots},
        headers=admin,
    )
    code = await display_code(stack, machine)
    r = await http.post(
        "/api/lock-by-code", json={"code": code, "client_id": CLIENT, "machine_id": machine}
    )
    assert_error(r, 409, "insufficient_stock")
    assert (
        await http.post(
            f"/api/machine/{machine}/restock",
            json={"slots": [{"id": "A1", "stock": 1}]},
            headers=admin,
        )
    ).status_code == 200
    held = await lock(stack, http, machine)
    assert held["max_quantity"] == 1


async def test_restock_picklist_copy_taps_and_alerts(
    stack: Stack, http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    ids = await snack_machine(http, admin)
    await stack.services.machines.register(
        NewMachine(
            machine_id="gym-1", name="Gym", price_amount=2000, capacity=4, stock=0, location="Gym"
        )
    )
    url = f"/api/machine/{machine}/restock"
    assert_error(await http.post(url, json={}, headers=admin), 400, "invalid_request")
    assert_error(
        await http.post(
            url, json={"fill": "par", "slots": [{"id": "A1", "stock": 1}]}, headers=admin
        ),
        400,
        "invalid_request",
    )
    assert_error(
        await http.post(url, json={"slots": [{"id": "A1", "stock": 9}]}, headers=admin),
        400,
        "invalid_request",
    )
    assert_error(
        await http.post(url, json={"slots": [{"id": "Q1", "stock": 1}]}, headers=admin),
        400,
        "invalid_request",
    )
    assert_error(await http.post(url, json={"fill": "par"}), 401, "unauthorized")

    # Pick list: par 6 each; A1 holds 5, A2 2, B1 0; gym-1 is one slot of par 4 holding 0.
    pick = (await http.get("/api/picklist", params={"machine_id": machine}, headers=admin)).json()
    assert [(p["product"]["name"], p["units"]) for p in pick["products"]] == [
        ("Chips", 4),
        ("Cola 330 ml", 1),
        ("Water", 6),
    ]
    assert pick["total"] == 11 and pick["machines"] == [machine]
    fleet = (await http.get("/api/picklist", headers=admin)).json()
    assert fleet["total"] == 15 and fleet["machines"] == ["gym-1", machine]
    gym = (await http.get("/api/picklist", params={"location": "Gym"}, headers=admin)).json()
    assert [(p["product"]["name"], p["units"]) for p in gym["products"]] == [("Gym", 4)]
    assert_error(
        await http.get("/api/picklist", params={"machine_id": "nope"}, headers=admin),
        404,
        "machine_not_found",
    )
    sheet = await http.get("/api/picklist.csv", headers=admin)
    assert sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(sheet.text)))
    assert rows[0] == ["product_id", "sku", "name", "units", "gym-1", machine]
    assert [rows[2][2], rows[2][3], rows[2][4], rows[2][5]] == ["Cola 330 ml", "1", "0", "1"]
    assert rows[2][1] == "COLA-330"

    # Lost demand: taps on a sold-out slot count, taps on a slot with stock do not.
    tap = f"/api/machine/{machine}/slots/B1/sold-out-tap"
    assert (await http.post(tap)).json() == {"counted": True}
    assert (await http.post(tap)).json() == {"counted": True}
    assert (await http.post(f"/api/machine/{machine}/slots/A1/sold-out-tap")).json() == {
        "counted": False
    }

    # Alerts per slot: B1 sold out, A2 low (2 <= 3); once each until restocked.
    assert await Slots(stack.services.ctx).check_alerts() == 2
    assert await Slots(stack.services.ctx).check_alerts() == 0
    async with stack.services.ctx.db() as s:
        kinds = sorted((a.kind, a.message) for a in (await s.scalars(select(Alert))).all())
    assert [k for k, _ in kinds] == ["low_stock", "sold_out"]
    assert "slot A2 Chips: 2 left" in kinds[0][1] and "slot B1 Water is sold out" in kinds[1][1]

    r = await http.post(url, json={"fill": "par"}, headers=admin)
    assert [(s["id"], s["stock"], s["sold_out_taps"]) for s in r.json()["slots"]] == [
        ("A1", 6, 0),
        ("A2", 6, 0),
        ("B1", 6, 2),
    ]
    r = await http.post(url, json={"fill": "capacity"}, headers=admin)
    assert [s["stock"] for s in r.json()["slots"]] == [8, 8, 8]
    assert (await machine_row(stack, machine)).stock == 24
    pick = (await http.get("/api/picklist", params={"machine_id": machine}, headers=admin)).json()
    assert pick["products"] == [] and pick["total"] == 0

    # Copy the planogram to the gym machine: same slots, motors and prices; its stock starts at 0.
    r = await http.post(
        f"/api/machine/{machine}/slots/copy", json={"machines": ["gym-1"]}, headers=admin
    )
    assert r.json() == {"machine_id": machine, "copied_to": ["gym-1"]}
    copied = (await http.get("/api/machine/gym-1/slots", headers=admin)).json()
    assert [
        (s["id"], s["motor"], s["product"]["id"], s["price"]["amount"], s["stock"])
        for s in copied["slots"]
    ] == [
        ("A1", 0, ids["cola"], 2000, 0),
        ("A2", 1, ids["chips"], 1200, 0),
        ("B1", 2, ids["water"], 1000, 0),
    ]
    assert_error(
        await http.post(
            f"/api/machine/{machine}/slots/copy", json={"machines": ["nope"]}, headers=admin
        ),
        404,
        "machine_not_found",
    )


async def test_v1_machines_keep_working(
    stack: Stack, http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    """update-stock and price on a one-slot machine act on its slot; a multi-slot one refuses."""
    r = await http.post(f"/api/machine/{machine}/update-stock", json={"stock": 7}, headers=admin)
    assert r.status_code == 200
    plan = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()
    assert plan["slots"][0]["stock"] == 7
    await stack.services.machines.set_price(machine, 3000)
    plan = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()
    assert plan["slots"][0]["price"]["amount"] == 3000
    held = await lock(stack, http, machine)
    r = await order(http, held["session_id"], quantity=2)
    assert r.status_code == 200 and r.json()["amount"] == 6000
    lines = (await http.get(f"/api/orders/{r.json()['order_id']}")).json()["lines"]
    assert [(ln["slot"], ln["quantity"], ln["unit_amount"]) for ln in lines] == [("1", 2, 3000)]
    await http.post(
        f"/api/machine/{machine}/unlock",
        json={"client_id": CLIENT, "session_id": held["session_id"]},
    )
    await snack_machine(http, admin)
    assert_error(
        await http.post(f"/api/machine/{machine}/update-stock", json={"stock": 1}, headers=admin),
        400,
        "invalid_request",
    )


async def test_the_pick_list_sheet_never_holds_a_formula(
    http: httpx.AsyncClient, admin: dict[str, str], machine: str
) -> None:
    tricky = await product(http, admin, "=HYPERLINK(1)", 2000, "+SKU")
    version = (await http.get(f"/api/machine/{machine}/slots", headers=admin)).json()["version"]
    await http.put(
        f"/api/machine/{machine}/slots",
        json={"version": version, "slots": [row("A1", 0, tricky, stock=1)]},
        headers=admin,
    )
    sheet = await http.get("/api/picklist.csv", headers=admin)
    rows = list(csv.reader(io.StringIO(sheet.text)))
    assert rows[1][1:4] == ["'+SKU", "'=HYPERLINK(1)", "5"]

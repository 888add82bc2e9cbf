"""The users and audit pages, rights on pages, refunds with a reason, and the audit
entries every interface leaves."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.services.audit import AuditFilter
from api.services.machines import NewMachine
from tests.admin.support import admin_client, admin_stack, login, post_form, vend
from tests.operators.support import PASSWORD, bearer, make_user, token_of
from tests.support.stack import Stack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with admin_stack(tmp_path) as running:
        await running.services.machines.register(
            NewMachine(
                machine_id="m-1", name="Mall", location="Mall", price_amount=2500, capacity=10,
                stock=5,
            )
        )  # fmt: skip
        await running.services.machines.apply_status("m-1", {"state": "online", "boot": 1})
        yield running


async def actions(stack: Stack, **where: str) -> list[tuple[str, str, str]]:
    entries = await stack.services.audit.entries(AuditFilter(**where))  # type: ignore[arg-type]
    return [(e.actor, e.action, e.target) for e in reversed(entries)]


async def user_client(stack: Stack, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=stack.url, timeout=20)
    assert (await login(client, username, PASSWORD)).status_code == 303
    return client


async def test_users_page_creates_changes_and_keeps_the_last_admin(stack: Stack) -> None:
    async with admin_client(stack) as admin:
        page = await admin.get("/admin/users")
        assert page.status_code == 200 and 'id="user-admin"' in page.text
        short = await post_form(
            admin, "/admin/users", "/admin/users",
            {"username": "meena", "password": "short", "role": "operator", "locations": ""},
        )  # fmt: skip
        assert short.status_code == 400 and 'id="e-password"' in short.text
        made = await post_form(
            admin, "/admin/users", "/admin/users",
            {"username": "meena", "password": PASSWORD, "role": "restocker",
             "locations": "Mall, Lobby"},
        )  # fmt: skip
        assert made.status_code == 303
        users = {u.username: u for u in await stack.services.admins.users()}
        assert users["meena"].role == "restocker" and users["meena"].locations == ["Mall", "Lobby"]

        taken = await post_form(
            admin, "/admin/users", "/admin/users",
            {"username": "meena", "password": PASSWORD, "role": "viewer", "locations": ""},
        )  # fmt: skip
        assert taken.status_code == 400 and "already exists" in taken.text

        meena = await user_client(stack, "meena")
        assert (await meena.get("/admin")).status_code == 200
        forbidden = await meena.get("/admin/users")
        assert forbidden.status_code == 403 and "may not manage users" in forbidden.text

        role = await post_form(
            admin, "/admin/users", "/admin/users/meena",
            {"what": "role", "role": "operator", "locations": ""},
        )  # fmt: skip
        assert role.status_code == 303
        reset = await post_form(
            admin, "/admin/users", "/admin/users/meena",
            {"what": "password", "password": PASSWORD + "x"},
        )  # fmt: skip
        assert reset.status_code == 303
        ended = await meena.get("/admin")
        assert ended.status_code == 303  # a new password ends their session
        await meena.aclose()

        off = await post_form(admin, "/admin/users", "/admin/users/meena", {"what": "disable"})
        assert off.status_code == 303
        last = await post_form(admin, "/admin/users", "/admin/users/admin", {"what": "disable"})
        assert last.status_code == 409 and "last active admin" in last.text
        demote = await post_form(
            admin, "/admin/users", "/admin/users/admin",
            {"what": "role", "role": "viewer", "locations": ""},
        )  # fmt: skip
        assert demote.status_code == 409

    assert await actions(stack, target="user:meena") == [
        ("admin", "user_created", "user:meena"),
        ("admin", "user_changed", "user:meena"),
        ("admin", "user_changed", "user:meena"),
        ("admin", "user_changed", "user:meena"),
    ]
    entries = await stack.services.audit.entries(AuditFilter(target="user:meena"))
    assert entries[0].after is not None and entries[0].after["disabled"] is True
    assert entries[1].after is not None and entries[1].after.get("new_password") is True
    assert "password_hash" not in str([e.after for e in entries])


async def test_rights_on_pages_and_audit_of_page_changes(stack: Stack) -> None:
    await make_user(stack.services, "ravi", "restocker")
    await make_user(stack.services, "vera", "viewer")
    ravi = await user_client(stack, "ravi")
    vera = await user_client(stack, "vera")
    try:
        page = "/admin/machines/m-1"
        stocked = await post_form(ravi, page, f"{page}/stock", {"stock": "8"})
        assert stocked.status_code == 303
        priced = await post_form(ravi, page, f"{page}/price", {"price": "30"})
        assert priced.status_code == 403 and "Not allowed" in priced.text
        assert (await post_form(vera, page, f"{page}/stock", {"stock": "2"})).status_code == 403
        assert (
            await post_form(vera, page, f"{page}/mode", {"mode": "out_of_service"})
        ).status_code == 403
        assert (await vera.get("/admin/audit")).status_code == 200
        home = (await vera.get("/admin")).text
        assert 'href="/admin/users"' not in home and 'href="/admin/machines/new"' not in home
        assert "vera (viewer)" in home
    finally:
        await ravi.aclose()
        await vera.aclose()
    async with admin_client(stack) as admin:
        assert (await post_form(admin, page, f"{page}/price", {"price": "30"})).status_code == 303
        mode = await post_form(admin, page, f"{page}/mode", {"mode": "out_of_service"})
        assert mode.status_code == 303
        assert 'href="/admin/users"' in (await admin.get("/admin")).text
        rotated = await post_form(admin, page, f"{page}/rotate-key", {})
        assert rotated.status_code == 200
    assert await actions(stack, machine_id="m-1") == [
        ("system", "machine_registered", "machine:m-1"),
        ("ravi", "stock_changed", "machine:m-1"),
        ("admin", "price_changed", "machine:m-1"),
        ("admin", "mode_changed", "machine:m-1"),
        ("admin", "key_rotated", "machine:m-1"),
    ]
    price = (await stack.services.audit.entries(AuditFilter(action="price_changed")))[0]
    assert (price.before, price.after) == ({"price_amount": 2500}, {"price_amount": 3000})


async def test_refund_needs_a_reason_everywhere(stack: Stack) -> None:
    order_id = await vend(stack.services, "m-1", 2)  # ₹50.00 paid
    async with httpx.AsyncClient(base_url=stack.url, timeout=20) as http:
        headers = bearer(await token_of(http, "admin", "correct-horse-battery"))
        path = f"/api/orders/{order_id}/refund"
        none = await http.post(path, json={"amount": 500}, headers=headers)
        assert none.status_code == 400 and none.json()["error"]["code"] == "reason_required"
        blank = await http.post(path, json={"amount": 500, "reason": "  "}, headers=headers)
        assert blank.json()["error"]["code"] == "reason_required"
        made = await http.post(
            path, json={"amount": 1000, "reason": "coffee was cold"}, headers=headers
        )
        assert made.status_code == 201, made.text
        assert made.json()["amount"] == 1000 and made.json()["reason"] == "coffee was cold"
        over = await http.post(path, json={"amount": 4001, "reason": "x"}, headers=headers)
        assert over.status_code == 409 and over.json()["error"]["code"] == "refund_exceeds_paid"

    async with admin_client(stack) as admin:
        page = f"/admin/orders/{order_id}"
        missing = await post_form(
            admin, page, f"{page}/refund",
            {"step": "review", "amount_choice": "custom", "amount": "5", "reason": ""},
        )  # fmt: skip
        assert missing.status_code == 400 and "Say why you refund" in missing.text
        review = await post_form(
            admin, page, f"{page}/refund",
            {"step": "review", "amount_choice": "custom", "amount": "5", "reason": "wrong flavour"},
        )  # fmt: skip
        assert review.status_code == 200 and "wrong flavour" in review.text
        done = await post_form(
            admin, page, f"{page}/refund",
            {"step": "confirm", "paise": "500", "reason": "wrong flavour"},
        )  # fmt: skip
        assert done.status_code == 303
        shown = await admin.get(page)
        assert "coffee was cold" in shown.text and "wrong flavour" in shown.text
    refunds = await stack.services.audit.entries(AuditFilter(action="refund_issued"))
    assert [(e.actor, e.reason, e.machine_id) for e in reversed(refunds)] == [
        ("admin", "coffee was cold", "m-1"),
        ("admin", "wrong flavour", "m-1"),
    ]


async def test_audit_page_filters_and_csv(stack: Stack) -> None:
    services = stack.services
    await services.machines.set_price("m-1", 3000, by="admin", reason="festival")
    await services.machines.set_stock("m-1", 9, by="ravi")
    async with admin_client(stack) as admin:
        page = await admin.get("/admin/audit?actor=ravi")
        assert page.status_code == 200
        assert page.text.count('class="card audit-entry"') == 1 and "stock changed" in page.text
        wrong = await admin.get("/admin/audit?from=someday&actor=admin")
        assert wrong.status_code == 400 and 'id="e-from"' in wrong.text
        assert 'value="admin"' in wrong.text  # the other filters are kept
        csv = await admin.get("/admin/audit.csv?action=price_changed")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        text = csv.content.decode("utf-8")
        assert text.startswith("\ufeffid,at,actor,action,target,before,after,reason")
        lines = text.strip().splitlines()
        assert len(lines) == 2
        assert "+05:30," in lines[1] and "festival" in lines[1]
        assert '{""price_amount"": 3000}' in lines[1]


async def test_a_user_limited_to_locations_sees_only_their_machines(stack: Stack) -> None:
    services = stack.services
    await services.machines.register(
        NewMachine(
            machine_id="m-2", name="Station", location="Lobby", price_amount=2500, capacity=10,
            stock=5,
        )
    )  # fmt: skip
    await services.machines.apply_status("m-2", {"state": "online", "boot": 1})
    mine = await vend(services, "m-1")
    theirs = await vend(services, "m-2", client_id="client-00002")
    await make_user(services, "mall", "operator", ["Mall"])
    client = await user_client(stack, "mall")
    try:
        fleet = (await client.get("/admin")).text
        assert "/admin/machines/m-1" in fleet and "/admin/machines/m-2" not in fleet
        assert (await client.get("/admin/machines/m-1")).status_code == 200
        outside = await client.get("/admin/machines/m-2")
        assert outside.status_code == 403 and "outside your locations" in outside.text
        stock = await client.post("/admin/machines/m-2/stock", data={"stock": "1"})
        assert stock.status_code == 403
        orders = (await client.get("/admin/orders")).text
        assert mine in orders and theirs not in orders
        assert (await client.get(f"/admin/orders/{theirs}")).status_code == 403
        assert (await client.get(f"/admin/orders/{mine}")).status_code == 200
        csv = (await client.get("/admin/orders.csv")).text
        assert mine in csv and theirs not in csv
    finally:
        await client.aclose()

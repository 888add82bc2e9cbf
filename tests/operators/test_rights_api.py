"""Every admin JSON route against every role: a missing right is 403 ``forbidden``,
a held one passes the guard; users, location scopes, disabling and the last admin."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.services.machines import NewMachine
from tests.admin.support import admin_stack, login
from tests.operators.support import PASSWORD, ROLES, bearer, make_user, token_of
from tests.support.stack import Stack

# (method, path, body, right) for every admin JSON route on the server.
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/admin/verify", None, "read"),
    ("GET", "/api/audit", None, "read"),
    ("POST", "/api/machine/m-1/update-stock", {"stock": 3}, "stock"),
    ("POST", "/low-stock-alert", None, "stock"),
    ("POST", "/api/machine/m-1/price", {"price": {"amount": 3000, "currency": "INR"}}, "prices"),
    ("POST", "/api/orders/no-such-order/refund", {"amount": 100, "reason": "r"}, "refunds"),
    ("POST", "/api/machine/register", "register", "machines"),
    ("GET", "/api/admin/users", None, "users"),
    ("POST", "/api/admin/users", "new-user", "users"),
    ("PUT", "/api/admin/users/spare", {"locations": ["Hall"]}, "users"),
    ("DELETE", "/api/machine/zz-none", None, "machines"),
    ("POST", "/api/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["sale"]}, "users"),
    ("GET", "/api/webhooks", None, "users"),
    ("DELETE", "/api/webhooks/wh_none", None, "users"),
    ("GET", "/api/webhooks/wh_none/deliveries", None, "users"),
    ("POST", "/api/webhooks/wh_none/test", None, "users"),
]
HOLDS = {
    "admin": {"read", "stock", "prices", "refunds", "machines", "users"},
    "operator": {"read", "stock", "prices", "refunds", "machines"},
    "restocker": {"read", "stock"},
    "viewer": {"read"},
}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with admin_stack(tmp_path) as running:
        services = running.services
        for mid, location in (("m-1", "Mall"), ("m-2", "Lobby")):
            await services.machines.register(
                NewMachine(
                    machine_id=mid,
                    name=mid,
                    location=location,
                    price_amount=2500,
                    capacity=10,
                    stock=5,
                )
            )
        for role in ROLES:
            await make_user(services, f"{role}-1", role)
        await make_user(services, "spare", "viewer")
        yield running


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=20) as client:
        yield client


def _body(body: Any, role: str) -> Any:
    if body == "register":
        return {
            "machine_id": f"new-{role}",
            "name": "New",
            "price": {"amount": 2000, "currency": "INR"},
            "capacity": 5,
        }
    if body == "new-user":
        return {"username": f"made-by-{role}", "password": PASSWORD, "role": "viewer"}
    return body


@pytest.mark.parametrize("role", ROLES)
async def test_rights_matrix(http: httpx.AsyncClient, role: str) -> None:
    headers = bearer(await token_of(http, f"{role}-1"))
    for method, path, body, right in ROUTES:
        answer = await http.request(method, path, json=_body(body, role), headers=headers)
        if right in HOLDS[role]:
            assert answer.status_code not in (401, 403), (role, path, answer.text)
            assert answer.status_code < 500, (role, path, answer.text)
        else:
            assert answer.status_code == 403, (role, path, answer.text)
            assert answer.json()["error"]["code"] == "forbidden", (role, path)
    expected_refund = 404 if "refunds" in HOLDS[role] else 403
    answer = await http.post(
        "/api/orders/no-such-order/refund", json={"amount": 1, "reason": "x"}, headers=headers
    )
    assert answer.status_code == expected_refund
    # Every role may log out (read); the token then stops working.
    assert (await http.post("/api/admin/logout", headers=headers)).status_code == 200
    assert (await http.get("/api/admin/verify", headers=headers)).status_code == 401


async def test_users_created_listed_and_changed(http: httpx.AsyncClient) -> None:
    admin = bearer(await token_of(http, "admin-1"))
    made = await http.post(
        "/api/admin/users",
        json={"username": "ravi", "password": PASSWORD, "role": "restocker", "locations": ["Mall"]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["role"] == "restocker" and made.json()["locations"] == ["Mall"]
    again = await http.post(
        "/api/admin/users",
        json={"username": "ravi", "password": PASSWORD, "role": "viewer"},
        headers=admin,
    )
    assert again.status_code == 409
    bad_role = await http.post(
        "/api/admin/users",
        json={"username": "x1", "password": PASSWORD, "role": "owner"},
        headers=admin,
    )
    assert bad_role.status_code == 400
    listed = (await http.get("/api/admin/users", headers=admin)).json()["users"]
    ravi = next(u for u in listed if u["username"] == "ravi")
    assert ravi["role"] == "restocker" and ravi["disabled"] is False

    ravi_token = bearer(await token_of(http, "ravi"))
    price = {"price": {"amount": 3000, "currency": "INR"}}
    assert (
        await http.post("/api/machine/m-1/price", json=price, headers=ravi_token)
    ).status_code == 403
    changed = await http.put("/api/admin/users/ravi", json={"role": "operator"}, headers=admin)
    assert changed.status_code == 200 and changed.json()["role"] == "operator"
    # The new role counts at the next request, with the same token.
    assert (
        await http.post("/api/machine/m-1/price", json=price, headers=ravi_token)
    ).status_code == 200
    assert (await http.put("/api/admin/users/nobody", json={}, headers=admin)).status_code == 404


async def test_location_scope(http: httpx.AsyncClient, stack: Stack) -> None:
    await make_user(stack.services, "mall-op", "operator", ["Mall"])
    headers = bearer(await token_of(http, "mall-op"))
    verify = (await http.get("/api/admin/verify", headers=headers)).json()
    assert verify["role"] == "operator" and verify["locations"] == ["Mall"]
    price = {"price": {"amount": 3100, "currency": "INR"}}
    assert (
        await http.post("/api/machine/m-1/price", json=price, headers=headers)
    ).status_code == 200
    outside = await http.post("/api/machine/m-2/price", json=price, headers=headers)
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "forbidden"
    stock = await http.post("/api/machine/m-2/update-stock", json={"stock": 1}, headers=headers)
    assert stock.status_code == 403
    admin = bearer(await token_of(http, "admin-1"))
    await http.post("/api/machine/m-2/update-stock", json={"stock": 2}, headers=admin)
    mine = (await http.get("/api/audit", headers=headers)).json()["entries"]
    assert mine and {e["target"] for e in mine} == {"machine:m-1"}
    everyone = (await http.get("/api/audit", headers=admin)).json()["entries"]
    assert {"machine:m-1", "machine:m-2"} <= {e["target"] for e in everyone}
    assert (await http.get("/api/audit?machine_id=m-2", headers=headers)).status_code == 403


async def test_disabled_users_token_and_cookie_stop_at_next_request(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    token = bearer(await token_of(http, "operator-1"))
    async with httpx.AsyncClient(base_url=stack.url, timeout=20) as browser:
        assert (await login(browser, "operator-1", PASSWORD)).status_code == 303
        assert (await browser.get("/admin")).status_code == 200
        assert (await http.get("/api/admin/verify", headers=token)).status_code == 200

        admin = bearer(await token_of(http, "admin-1"))
        off = await http.put("/api/admin/users/operator-1", json={"disabled": True}, headers=admin)
        assert off.status_code == 200 and off.json()["disabled"] is True

        refused = await http.get("/api/admin/verify", headers=token)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        page = await browser.get("/admin")
        assert page.status_code == 303 and page.headers["location"].startswith("/admin/login")
        relogin = await http.post(
            "/api/admin/login", json={"username": "operator-1", "password": PASSWORD}
        )
        assert relogin.status_code == 401


async def test_the_last_active_admin_is_kept(http: httpx.AsyncClient, stack: Stack) -> None:
    root = bearer(await token_of(http, "admin-1"))
    # "admin" (the ADMIN_PASSWORD bootstrap) and admin-1 are the admins; one may go.
    assert (
        await http.put("/api/admin/users/admin", json={"disabled": True}, headers=root)
    ).status_code == 200
    for change in ({"role": "viewer"}, {"disabled": True}):
        refused = await http.put("/api/admin/users/admin-1", json=change, headers=root)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "last_admin"
        assert "last active admin" in refused.json()["error"]["message"]
    users = (await http.get("/api/admin/users", headers=root)).json()["users"]
    me = next(u for u in users if u["username"] == "admin-1")
    assert me["role"] == "admin" and me["disabled"] is False

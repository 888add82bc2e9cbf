"""The admin API for scripts: tokens, registration, stock."""

import httpx

from tests.http.test_shopper_api import assert_error
from tests.support.stack import ADMIN_PASSWORD


async def token(http: httpx.AsyncClient) -> str:
    r = await http.post("/api/admin/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["expires_in"] == 3600
    return str(body["token"])


async def test_login_and_verify(http: httpx.AsyncClient) -> None:
    assert_error(
        await http.post(
            "/api/admin/login", json={"username": "admin", "password": "wrong-password"}
        ),
        401,
        "invalid_credentials",
    )
    bearer = {"Authorization": f"Bearer {await token(http)}"}
    r = await http.get("/api/admin/verify", headers=bearer)
    assert r.status_code == 200 and r.json()["username"] == "admin"
    assert_error(await http.get("/api/admin/verify"), 401, "unauthorized")
    assert_error(
        await http.get("/api/admin/verify", headers={"Authorization": "Bearer forged"}),
        401,
        "unauthorized",
    )


async def test_register_and_restock(http: httpx.AsyncClient) -> None:
    body = {
        "machine_id": "m-7",
        "name": "Gym",
        "price": {"amount": 3000, "currency": "INR"},
        "capacity": 12,
        "stock": 4,
    }
    assert_error(await http.post("/api/machine/register", json=body), 401, "unauthorized")
    bearer = {"Authorization": f"Bearer {await token(http)}"}
    r = await http.post("/api/machine/register", json=body, headers=bearer)
    assert r.status_code == 201
    assert r.json()["machine_id"] == "m-7" and r.json()["api_key"].startswith("svk_")
    assert_error(
        await http.post("/api/machine/register", json=body, headers=bearer), 409, "machine_exists"
    )
    assert_error(
        await http.post("/api/machine/m-7/update-stock", json={"stock": 20}, headers=bearer),
        400,
        "invalid_request",
    )
    r = await http.post("/api/machine/m-7/update-stock", json={"stock": 2}, headers=bearer)
    assert r.json() == {"machine_id": "m-7", "stock": 2, "capacity": 12}
    alerts = (await http.post("/low-stock-alert", headers=bearer)).json()["alerts"]
    assert alerts == [{"machine_id": "m-7", "stock": 2, "threshold": 3}]
    again = (await http.post("/low-stock-alert", headers=bearer)).json()["alerts"]
    assert again == []

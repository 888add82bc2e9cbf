"""One throttle on admin logins (JSON and form), and logging out that revokes at once."""

from pathlib import Path

import httpx

from tests.admin.support import admin_client, admin_stack, csrf_of, login, post_form
from tests.support.stack import ADMIN_PASSWORD

WRONG = {"username": "admin", "password": "not-the-password"}
RIGHT = {"username": "admin", "password": ADMIN_PASSWORD}


async def test_json_and_form_logins_share_one_throttle(tmp_path: Path) -> None:
    async with (
        admin_stack(tmp_path) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        for _ in range(5):
            answer = await http.post("/api/admin/login", json=WRONG)
            assert answer.status_code == 401
        refused = await http.post("/api/admin/login", json=RIGHT)  # right, but too late
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 0 < int(refused.headers["Retry-After"]) <= 300
        form = await login(http)  # the dashboard's form is the same door
        assert form.status_code == 429 and "Retry-After" in form.headers

    (tmp_path / "b").mkdir()
    async with (
        admin_stack(tmp_path / "b") as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        for _ in range(5):
            page = await http.get("/admin/login")
            data = {**WRONG, "csrf": csrf_of(page.text)}
            assert (await http.post("/admin/login", data=data)).status_code == 401
        assert (await http.post("/api/admin/login", json=RIGHT)).status_code == 429


async def test_logout_revokes_a_saved_token(tmp_path: Path) -> None:
    async with (
        admin_stack(tmp_path) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        token = (await http.post("/api/admin/login", json=RIGHT)).json()["token"]
        saved = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/api/admin/verify", headers=saved)).status_code == 200
        assert (await http.post("/api/admin/logout", headers=saved)).status_code == 200
        gone = await http.get("/api/admin/verify", headers=saved)
        assert gone.status_code == 401 and "logged out" in gone.json()["error"]["message"]
        fresh = (await http.post("/api/admin/login", json=RIGHT)).json()["token"]
        assert (
            await http.get("/api/admin/verify", headers={"Authorization": f"Bearer {fresh}"})
        ).status_code == 200


async def test_logout_revokes_a_saved_dashboard_cookie(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack, admin_client(stack) as admin:
        saved = dict(admin.cookies)
        assert (await admin.get("/admin")).status_code == 200
        out = await post_form(admin, "/admin", "/admin/logout", {})
        assert out.status_code == 303
        async with httpx.AsyncClient(base_url=stack.url, cookies=saved, timeout=10) as replay:
            assert (await replay.get("/admin")).status_code == 303  # back to the login page
            assert (await replay.get("/api/admin/verify")).status_code == 401

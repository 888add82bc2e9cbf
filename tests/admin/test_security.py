"""The dashboard's doors: sessions, cookies, CSRF, login throttling, escaping, keys shown once."""

import re
import time
from pathlib import Path

import httpx
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from api.http.deps import ADMIN_COOKIE
from api.security.derived_keys import derive_secret
from tests.admin.support import (
    admin_client,
    admin_stack,
    csrf_of,
    login,
    post_form,
    register,
    vend,
)
from tests.support.stack import ADMIN_PASSWORD
from web.admin.routes import routes

XSS = "<script>alert(1)</script>"


def _paths(mid: str, oid: str) -> list[tuple[str, str]]:
    out = []
    for route in routes():
        methods = getattr(route, "methods", None)
        if methods is None:  # the static files mount
            continue
        path = route.path.replace("{mid}", mid).replace("{oid}", oid)
        path = path.replace("{username}", "reporter")
        for method in sorted(methods - {"HEAD"}):
            if path not in ("/admin/login",):
                out.append((method, path))
    return out


def _admin_pages(mid: str, oid: str) -> list[str]:
    return [
        path for method, path in _paths(mid, oid) if method == "GET" and path != "/admin/events"
    ]


async def test_every_admin_page_needs_a_session(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack:
        await register(stack.services, "m1")
        oid = await vend(stack.services, "m1")
        paths = _paths("m1", oid)
        assert len(paths) >= 20
        async with httpx.AsyncClient(base_url=stack.url) as anonymous:
            for method, path in paths:
                answer = await anonymous.request(method, path, data={"stock": "1"})
                if answer.status_code == 303:
                    assert answer.headers["location"].startswith("/admin/login?next="), path
                else:
                    assert answer.status_code == 401, (method, path, answer.status_code)
                assert oid not in answer.text or (method == "GET" and answer.status_code == 303)
            sse = await anonymous.get("/admin/events", headers={"Accept": "text/event-stream"})
            assert sse.status_code == 401
        async with admin_client(stack) as admin:
            for path in _admin_pages("m1", oid):
                answer = await admin.get(path)
                assert answer.status_code == 200, path
                assert answer.headers["cache-control"] == "no-store"
                assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


async def test_forged_and_expired_cookies_fail(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack:
        secret = derive_secret(stack.runtime.settings, "admin-tokens")

        class LongAgo(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 7200

        expired = URLSafeTimedSerializer(
            secret, salt="smartvend-admin-token", signer=LongAgo
        ).dumps({"u": "admin"})
        forged = URLSafeTimedSerializer("not-the-secret" * 3, salt="smartvend-admin-token").dumps(
            {"u": "admin"}
        )
        ghost = URLSafeTimedSerializer(secret, salt="smartvend-admin-token").dumps({"u": "ghost"})
        valid = URLSafeTimedSerializer(secret, salt="smartvend-admin-token").dumps({"u": "admin"})
        for cookie in (expired, forged, ghost, valid[:-3] + "abc", "garbage"):
            async with httpx.AsyncClient(
                base_url=stack.url, cookies={ADMIN_COOKIE: cookie}
            ) as client:
                answer = await client.get("/admin/orders")
                assert answer.status_code == 303, cookie
                assert answer.headers["location"].startswith("/admin/login")
        async with httpx.AsyncClient(base_url=stack.url, cookies={ADMIN_COOKIE: valid}) as client:
            assert (await client.get("/admin/orders")).status_code == 200


async def test_cookie_flags_logout_and_safe_next(tmp_path: Path) -> None:
    # The https part comes through a proxy on loopback that says so.
    async with admin_stack(tmp_path, trusted_proxies="127.0.0.1") as stack:
        async with httpx.AsyncClient(base_url=stack.url) as client:
            page = await client.get("/admin/login?next=//evil.example/x")
            answer = await client.post(
                "/admin/login",
                data={
                    "username": "admin",
                    "password": ADMIN_PASSWORD,
                    "csrf": csrf_of(page.text),
                    "next": "//evil.example/x",
                },
            )
            assert answer.status_code == 303 and answer.headers["location"] == "/admin"
            cookie = next(
                h for h in answer.headers.get_list("set-cookie") if h.startswith(ADMIN_COOKIE + "=")
            )
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
            assert "Secure" not in cookie
            out = await client.post("/admin/logout", data={"csrf": "0" * 64})
            assert out.status_code == 403
            out = await post_form(client, "/admin", "/admin/logout", {})
            assert out.status_code == 303
            assert (await client.get("/admin")).status_code == 303
        async with httpx.AsyncClient(
            base_url=stack.url, headers={"X-Forwarded-Proto": "https"}
        ) as https:
            page = await https.get("/admin/login")
            nonce = page.headers["set-cookie"]
            assert "Secure" in nonce  # so httpx over plain http keeps it back: send it by hand
            answer = await https.post(
                "/admin/login",
                headers={"Cookie": nonce.split(";")[0]},
                data={"username": "admin", "password": ADMIN_PASSWORD, "csrf": csrf_of(page.text)},
            )
            assert answer.status_code == 303
            cookies = answer.headers.get_list("set-cookie")
            assert any(h.startswith(ADMIN_COOKIE + "=") and "Secure" in h for h in cookies)


async def test_forms_without_the_csrf_token_are_refused(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack:
        await register(stack.services, "m1", stock=2)
        async with admin_client(stack) as admin:
            for data in (
                {"stock": "9"},
                {"stock": "9", "csrf": ""},
                {"stock": "9", "csrf": "a" * 64},
            ):
                answer = await admin.post("/admin/machines/m1/stock", data=data)
                assert answer.status_code == 403
            refused = await admin.post(
                "/admin/machines/new",
                data={
                    "machine_id": "m2",
                    "name": "x",
                    "price": "10",
                    "capacity": "5",
                    "stock": "0",
                },
            )
            assert refused.status_code == 403
            json_body = await admin.post("/admin/machines/m1/stock", json={"stock": 9})
            assert json_body.status_code == 403
            assert "9/10" not in (await admin.get("/admin/machines/m1")).text
            done = await post_form(
                admin, "/admin/machines/m1", "/admin/machines/m1/stock", {"stock": "9"}
            )
            assert done.status_code == 303
            assert "9/10" in (await admin.get("/admin/machines/m1")).text
        async with httpx.AsyncClient(base_url=stack.url) as fresh:
            answer = await fresh.post(
                "/admin/login", data={"username": "admin", "password": ADMIN_PASSWORD}
            )
            assert answer.status_code == 403
            assert ADMIN_COOKIE not in answer.headers.get("set-cookie", "")


async def test_login_throttling_holds(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        for _ in range(5):
            wrong = await login(client, password="wrong-password-123")
            assert wrong.status_code == 401
            assert "Wrong username or password" in wrong.text
        blocked = await login(client)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert ADMIN_COOKIE not in blocked.headers.get("set-cookie", "")
        for _ in range(3):
            assert (await login(client, username="ADMIN ")).status_code == 429
        other = await login(client, username="someone-else", password="whatever-it-is")
        assert other.status_code == 401


async def test_api_key_is_shown_once_and_names_are_escaped(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack, admin_client(stack) as admin:
        page = await post_form(
            admin,
            "/admin/machines/new",
            "/admin/machines/new",
            {
                "machine_id": "vm-7",
                "name": XSS,
                "location": XSS,
                "price": "25.50",
                "capacity": "12",
                "stock": "4",
            },
        )
        assert page.status_code == 201
        key = re.search(r'id="api-key" class="secret">([^<]+)<', page.text)
        assert key is not None and key.group(1).startswith("svk_")
        assert XSS not in page.text and "&lt;script&gt;" in page.text
        await stack.services.machines.apply_status(
            "vm-7", {"state": "online", "boot": 1, "fw": "1.0.0"}
        )
        oid = await vend(stack.services, "vm-7")
        rotated = await post_form(
            admin, "/admin/machines/vm-7", "/admin/machines/vm-7/rotate-key", {}
        )
        new_key = re.search(r'id="api-key" class="secret">([^<]+)<', rotated.text)
        assert new_key is not None and new_key.group(1) != key.group(1)
        for path in _admin_pages("vm-7", oid):
            answer = await admin.get(path)
            assert answer.status_code == 200, path
            assert key.group(1) not in answer.text, path
            assert new_key.group(1) not in answer.text, path
            if answer.headers["content-type"].startswith("text/csv"):
                # Not a page: a download, where the machine's name is kept exactly as typed.
                assert answer.headers["content-disposition"].startswith("attachment;"), path
                continue
            assert XSS not in answer.text, path
        first = await admin.get("/admin/orders.csv")
        assert key.group(1) not in first.text
        assert await stack.services.machines.authenticate("vm-7", new_key.group(1))
        assert not await stack.services.machines.authenticate("vm-7", key.group(1))

"""Users of each role on a running server, and their tokens."""

import httpx

from api.services.container import Services

PASSWORD = "pw-long-enough-1"
ROLES = ("admin", "operator", "restocker", "viewer")


async def make_user(
    services: Services, username: str, role: str, locations: list[str] | None = None
) -> None:
    await services.admins.create(username, PASSWORD, role, locations, by="admin")


async def token_of(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    answer = await http.post("/api/admin/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

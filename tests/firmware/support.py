"""Releases for tests: a key, a built release folder, an upload through the admin API."""

from dataclasses import dataclass
from pathlib import Path

import httpx

from api.firmware import cli as fw_cli
from tests.support.stack import ADMIN_PASSWORD


@dataclass
class Signer:
    key_file: Path
    public_key: str


def signer(tmp: Path, name: str = "release.key") -> Signer:
    key_file = tmp / name
    return Signer(key_file, fw_cli.keygen(key_file))


def release_dir(tmp: Path, version: str, sizes: dict[str, int], s: Signer) -> Path:
    """Files of the given sizes (deterministic bytes), built and signed into a folder."""
    src = tmp / f"src-{version}"
    for rel, size in sizes.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes((i * 7 + len(rel) + len(version)) % 251 for i in range(size)))
    return fw_cli.build(src, version, s.key_file, tmp / f"out-{version}")


async def admin_token(http: httpx.AsyncClient) -> dict[str, str]:
    login = await http.post(
        "/api/admin/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


def multipart(folder: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    data, signature, files = fw_cli.read_release(folder)
    parts = [
        ("manifest", ("manifest.json", data, "application/json")),
        ("signature", ("manifest.sig", signature.encode(), "text/plain")),
    ]
    for rel, path in files:
        parts.append(("files", (rel, path.read_bytes(), "application/octet-stream")))
    return parts


async def upload(http: httpx.AsyncClient, auth: dict[str, str], folder: Path) -> httpx.Response:
    return await http.post("/api/firmware", headers=auth, files=multipart(folder))

"""Releases over HTTP on a real server: upload checks, listing, machine downloads with ranges."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.services.machines import NewMachine
from tests.firmware import support
from tests.support.stack import Stack, running_stack

SIZES = {"boot.py": 100, "main.py": 1000, "lib/big.mpy": 200_000}  # crosses 64 KiB chunks


@pytest.fixture
def signer(tmp_path: Path) -> support.Signer:
    return support.signer(tmp_path)


@pytest.fixture
async def stack(tmp_path: Path, signer: support.Signer) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path,
        mqtt=False,
        firmware_public_keys=f"{'ab' * 32},{signer.public_key}",
        firmware_max_bytes=300_000,
    ) as running:
        yield running


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=20) as client:
        yield client


async def machine_headers(stack: Stack, mid: str = "dl-1") -> dict[str, str]:
    _, key = await stack.services.machines.register(
        NewMachine(machine_id=mid, name=mid, price_amount=2500, capacity=5, stock=1)
    )
    return {"Authorization": f"Bearer {key}", "X-Machine-Id": mid}


async def declared_upload(stack: Stack, length: int) -> bytes:
    """Send only the head of an upload that declares ``length`` bytes; read the answer."""
    host, port = stack.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /api/firmware HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode()
    )
    await writer.drain()
    answer = await reader.read(200)
    writer.close()
    await writer.wait_closed()
    return answer


async def test_upload_list_and_download_with_ranges(
    tmp_path: Path, stack: Stack, http: httpx.AsyncClient, signer: support.Signer
) -> None:
    folder = support.release_dir(tmp_path, "2.0.0", SIZES, signer)
    auth = await support.admin_token(http)
    assert (await http.get("/api/firmware")).status_code == 401
    stored = await support.upload(http, auth, folder)
    assert stored.status_code == 201, stored.text
    assert stored.json()["total_bytes"] == sum(SIZES.values())
    assert stored.json()["key"] == signer.public_key
    again = await support.upload(http, auth, folder)
    assert again.status_code == 409 and again.json()["error"]["code"] == "release_exists"
    listed = (await http.get("/api/firmware", headers=auth)).json()["releases"]
    assert [r["version"] for r in listed] == ["2.0.0"]

    headers = await machine_headers(stack)
    manifest = await http.get("/api/firmware/2.0.0/manifest", headers=headers)
    assert manifest.content == (folder / "manifest.json").read_bytes()
    assert manifest.headers["x-firmware-signature"] == (folder / "manifest.sig").read_text().strip()
    wrong = {**headers, "Authorization": "Bearer svk_wrong"}
    assert (await http.get("/api/firmware/2.0.0/manifest", headers=wrong)).status_code == 401
    no_id = {"Authorization": headers["Authorization"]}
    assert (await http.get("/api/firmware/2.0.0/manifest", headers=no_id)).status_code == 401

    big = (folder / "lib" / "big.mpy").read_bytes()
    url = "/api/firmware/2.0.0/files/lib/big.mpy"
    whole = await http.get(url, headers=headers)
    assert whole.status_code == 200 and whole.content == big
    assert whole.headers["etag"] == f'"{hashlib.sha256(big).hexdigest()}"'
    part = await http.get(url, headers={**headers, "Range": "bytes=65530-131080"})
    assert part.status_code == 206 and part.content == big[65530:131081]
    assert part.headers["content-range"] == f"bytes 65530-131080/{len(big)}"
    tail = await http.get(url, headers={**headers, "Range": "bytes=199990-"})
    assert tail.status_code == 206 and tail.content == big[199990:]
    suffix = await http.get(url, headers={**headers, "Range": "bytes=-5"})
    assert suffix.status_code == 206 and suffix.content == big[-5:]
    past = await http.get(url, headers={**headers, "Range": "bytes=200000-"})
    assert past.status_code == 416 and past.headers["content-range"] == "bytes */200000"
    missing = await http.get("/api/firmware/2.0.0/files/nope.py", headers=headers)
    assert missing.status_code == 404
    assert (await http.get("/api/firmware/9.9.9/manifest", headers=headers)).status_code == 404


async def test_upload_refuses_bad_signature_wrong_files_and_oversize(
    tmp_path: Path, stack: Stack, http: httpx.AsyncClient, signer: support.Signer
) -> None:
    auth = await support.admin_token(http)
    other = support.signer(tmp_path, "other.key")  # a key the server does not trust
    untrusted = support.release_dir(tmp_path / "u", "3.0.0", {"main.py": 10}, other)
    refused = await support.upload(http, auth, untrusted)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_signature"

    folder = support.release_dir(tmp_path / "t", "3.0.1", {"main.py": 10, "a.py": 5}, signer)
    (folder / "main.py").write_bytes(b"X" * 10)  # same size, other bytes
    wrong = await support.upload(http, auth, folder)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "file_mismatch"
    parts = [p for p in support.multipart(folder) if p[1][0] != "a.py"]
    short = await http.post("/api/firmware", headers=auth, files=parts)
    assert short.json()["error"]["code"] == "file_mismatch"

    tampered = support.release_dir(tmp_path / "x", "3.0.2", {"main.py": 10}, signer)
    data = json.loads((tampered / "manifest.json").read_bytes())
    data["allow_downgrade"] = True
    (tampered / "manifest.json").write_text(json.dumps(data, separators=(",", ":")))
    forged = await support.upload(http, auth, tampered)
    assert forged.json()["error"]["code"] == "bad_signature"

    answer = await declared_upload(stack, 300_001)  # FIRMWARE_MAX_BYTES + 1
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    # the firmware limit is for uploads only: other bodies keep MAX_BODY_BYTES
    login = await http.post("/api/admin/login", content=b"{" + b" " * 20_000 + b"}")
    assert login.status_code == 413
    listed = (await http.get("/api/firmware", headers=auth)).json()["releases"]
    assert listed == []  # nothing half-stored

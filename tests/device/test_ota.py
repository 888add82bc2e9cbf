"""The updater's decisions on CPython: what it refuses, how it resumes, when it gives up."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device import ota
from device.flash import Flash
from tests.device.releases import public_hex

T0 = 1_800_000_000
FILES = {"main.py": b"print('new')\n" * 300, "lib/x.mpy": bytes(range(256)) * 9}


class Body:
    def __init__(self, data: bytes, status: int) -> None:
        self.data, self.status, self.at = data, status, 0

    def read(self, n: int) -> bytes:
        out = self.data[self.at : self.at + n]
        self.at += len(out)
        return out

    def close(self) -> None:
        pass


class Server:
    def __init__(self, files: dict[str, bytes], manifest: bytes, ranges: bool = True) -> None:
        self.files, self.manifest, self.ranges = files, manifest, ranges
        self.down = False
        self.offsets: list[int] = []

    def fetch(self, url: str, offset: int) -> Body:
        if self.down:
            raise OSError("unreachable")
        if url.endswith("/manifest"):
            return Body(self.manifest, 200)
        data = self.files[url.split("/files/", 1)[1]]
        self.offsets.append(offset)
        if offset and self.ranges:
            return Body(data[offset:], 206)
        return Body(data, 200)


def release(version: str = "1.1.0", **extra: Any) -> tuple[bytes, str, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    entries = [
        {"path": p, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
        for p, d in FILES.items()
    ]
    manifest = json.dumps({"version": version, "files": entries, **extra}).encode()
    return manifest, key.sign(manifest).hex(), key


def cmd(version: str, signature: str) -> dict[str, Any]:
    manifest_url = f"http://srv/api/firmware/{version}/manifest"
    firmware = {"version": version, "manifest_url": manifest_url, "signature": signature}
    return {"cmd_id": "u1", "firmware": firmware}


def run(updater: ota.Updater, limit: int = 1000) -> list[tuple[str, str | None]]:
    out = []
    t = T0
    while not (updater.finished or updater.reboot) and limit:
        limit -= 1
        t += 1
        out += [(r["status"], r.get("error")) for r in updater.step(t)]
    return out


def updater(
    tmp_path: Path, server: Server, c: dict[str, Any], keys: list[str], **kw: Any
) -> ota.Updater:
    flash = kw.pop("flash", None) or Flash(str(tmp_path))
    return ota.Updater(flash, c, keys, kw.pop("current", "1.0.0"), server.fetch, chunk=500, **kw)


def test_refusals(tmp_path: Path) -> None:
    manifest, signature, key = release()
    keys = [public_hex(key)]
    server = Server(FILES, manifest)
    assert run(updater(tmp_path, server, cmd("1.1.0", signature), [])) == [
        ("rejected", "bad_signature")  # no key trusted
    ]
    other = public_hex(Ed25519PrivateKey.generate())
    assert (
        run(updater(tmp_path, server, cmd("1.1.0", signature), [other]))[-1][1] == "bad_signature"
    )
    # signed, but not the version the command asked for
    assert run(updater(tmp_path, server, cmd("1.2.0", signature), keys))[-1][1] == "bad_signature"
    same = updater(tmp_path, server, cmd("1.1.0", signature), keys, current="1.1.0")
    assert run(same) == [("rejected", "same_version")]
    older = updater(tmp_path, server, cmd("1.1.0", signature), keys, current="1.10.0")
    assert run(older) == [("rejected", "downgrade")]

    class Full(Flash):
        def free(self) -> int:
            return 4096

    full = updater(tmp_path, server, cmd("1.1.0", signature), keys, flash=Full(str(tmp_path)))
    assert run(full) == [("rejected", "no_space")]
    assert not (tmp_path / "staging" / "main.py").exists()


def test_an_allowed_downgrade_is_staged(tmp_path: Path) -> None:
    manifest, signature, key = release("0.9.0", allow_downgrade=True)
    up = updater(tmp_path, Server(FILES, manifest), cmd("0.9.0", signature), [public_hex(key)])
    steps = run(up)
    assert steps[0] == ("accepted", None) and up.reboot
    state = Flash(str(tmp_path)).read_json("fw.json")
    assert state["phase"] == "switch" and state["version"] == "0.9.0"


def test_resume_after_a_reboot_mid_download(tmp_path: Path) -> None:
    manifest, signature, key = release()
    server = Server(FILES, manifest)
    first = updater(tmp_path, server, cmd("1.1.0", signature), [public_hex(key)])
    for _ in range(4):  # the manifest and three chunks, then the power goes
        first.step(T0)
    staged = (tmp_path / "staging" / "main.py").stat().st_size
    assert 0 < staged < len(FILES["main.py"])
    server.offsets.clear()
    again = updater(tmp_path, server, cmd("1.1.0", signature), [public_hex(key)])
    assert run(again)[-1] == ("running", None) and again.reboot
    assert server.offsets[0] == staged  # Range from the staged size, not from 0
    for path, data in FILES.items():
        assert (tmp_path / "staging" / path).read_bytes() == data


def test_a_server_without_ranges_starts_the_file_over(tmp_path: Path) -> None:
    manifest, signature, key = release()
    server = Server(FILES, manifest, ranges=False)
    keys = [public_hex(key)]
    first = updater(tmp_path, server, cmd("1.1.0", signature), keys)
    for _ in range(3):  # the manifest and two chunks, then the power goes
        first.step(T0)
    assert (tmp_path / "staging" / "main.py").stat().st_size == 1000
    again = updater(tmp_path, server, cmd("1.1.0", signature), keys)
    assert run(again)[-1] == ("running", None) and again.reboot  # verified: never doubled
    assert server.offsets[:2] == [0, 1000]
    for path, data in FILES.items():
        assert (tmp_path / "staging" / path).read_bytes() == data


def test_one_request_per_file_while_the_link_holds(tmp_path: Path) -> None:
    manifest, signature, key = release()
    server = Server(FILES, manifest)
    assert run(updater(tmp_path, server, cmd("1.1.0", signature), [public_hex(key)]))
    assert server.offsets == [0, 0]  # two files, two requests, many chunks each


def test_gives_up_after_retries_with_growing_waits(tmp_path: Path) -> None:
    manifest, signature, key = release()
    server = Server(FILES, manifest)
    server.down = True
    up = updater(tmp_path, server, cmd("1.1.0", signature), [public_hex(key)], retry_s=2.0)
    waits = []
    t = T0
    while not up.finished:
        up.step(t)
        if up.wait_until > t:
            waits.append(up.wait_until - t)
            t = up.wait_until
    assert waits == [2.0, 4.0, 8.0, 16.0, 30.0]
    assert up.step(t) == []  # finished: nothing more


@pytest.mark.parametrize(
    "path", ["../x", "/abs", "a//b", "a/./b", "a b", "", ".release.json", "x" * 129]
)
def test_manifest_paths_stay_inside_the_folder(path: str) -> None:
    assert not ota.valid_path(path)


def test_versions_compare_by_number() -> None:
    assert ota.version_key("1.10.0") > ota.version_key("1.9.9")
    assert ota.version_key("2.0.0") > ota.version_key("1.99")
    assert ota.version_key("1.0.0") == ota.version_key("1.0.0")

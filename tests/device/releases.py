"""Signed releases on disk and a small HTTP server that serves them the way the
SmartVend server does: ``GET /api/firmware/{version}/manifest`` and
``/files/{path}`` with a bearer key, ``Range: bytes=N-`` answered with 206."""

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def public_hex(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def build_release(dest: Path, version: str, files: dict[str, bytes], key: Ed25519PrivateKey) -> str:
    """Write ``dest/<version>/`` (manifest.json, files/...); the signature, hex."""
    entries = []
    for path, data in files.items():
        target = dest / version / "files" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        entries.append(
            {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        )
    manifest = json.dumps(
        {"version": version, "files": entries, "allow_downgrade": False}, separators=(",", ":")
    ).encode()
    (dest / version / "manifest.json").write_bytes(manifest)
    return key.sign(manifest).hex()


def sample_files(version: str, size: int = 6000) -> dict[str, bytes]:
    """A release's files: the loop, a module and a package file, ``size`` bytes or so."""
    return {
        "main.py": (f"VERSION = {version!r}\n" + "# loop\n" * (size // 7)).encode(),
        "app.mpy": bytes((i * 7 + len(version)) % 256 for i in range(size)),
        "device/controller.mpy": (f"controller {version}\n" * (size // 20)).encode(),
    }


class ReleaseServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None, str | None]] = []  # (path, bearer, range)
        self.machines: list[str | None] = []  # X-Machine-Id of each request
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                ranged = self.headers.get("Range")
                mid = self.headers.get("X-Machine-Id")
                with server._lock:
                    server.requests.append((self.path, auth, ranged))
                    server.machines.append(mid)
                # As the server: keys are stored hashed, so the id comes with the key.
                if not auth or not auth.startswith("Bearer ") or len(auth) < 8 or not mid:
                    self.send_error(401)
                    return
                parts = self.path.split("/", 5)  # "", api, firmware, version, kind, path
                if len(parts) < 5 or parts[1:3] != ["api", "firmware"] or ".." in self.path:
                    self.send_error(404)
                    return
                base = server.root / parts[3]
                if parts[4] == "manifest":
                    target = base / "manifest.json"
                elif parts[4] == "files" and len(parts) == 6:
                    target = base / "files" / parts[5]
                else:
                    self.send_error(404)
                    return
                if not target.is_file():
                    self.send_error(404)
                    return
                data = target.read_bytes()
                start = 0
                if ranged and ranged.startswith("bytes=") and ranged.endswith("-"):
                    start = int(ranged[6:-1])
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def ranged(self) -> int:
        with self._lock:
            return sum(1 for _, _, r in self.requests if r)


@contextlib.contextmanager
def release_server(root: Path) -> Iterator[ReleaseServer]:
    server = ReleaseServer(root)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(5)

"""A release's manifest: its exact bytes, their Ed25519 signature, and the checks on both.

The manifest is ``{"version","files":[{"path","sha256","size"}],"allow_downgrade"}``
as compact JSON with the files sorted by path; the signature is Ed25519 over those
exact bytes, written as 128 lowercase hex characters. Public keys are 32 raw bytes
as 64 lowercase hex characters; a private key file holds the 32-byte seed as 64 hex
characters. Pure: no files, no database.
"""

import hashlib
import json
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from api.errors import InvalidRequest

VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$")
SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX128 = re.compile(r"^[0-9a-f]{128}$")
MAX_PATH = 200
MAX_FILES = 500


class BadSignature(InvalidRequest):
    code = "bad_signature"


class BadManifest(InvalidRequest):
    code = "bad_manifest"


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    version: str
    files: tuple[FileEntry, ...]
    allow_downgrade: bool

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)


def valid_path(path: object) -> bool:
    """Relative, ``[A-Za-z0-9_.-]`` segments joined by ``/``; no ``.``/``..`` segment."""
    if not isinstance(path, str) or not 0 < len(path) <= MAX_PATH:
        return False
    return all(SEGMENT.match(s) and s not in (".", "..") for s in path.split("/"))


def valid_version(version: object) -> bool:
    return isinstance(version, str) and VERSION.match(version) is not None


def encode(manifest: Manifest) -> bytes:
    """The manifest's one canonical form (the bytes that are signed)."""
    obj = {
        "version": manifest.version,
        "files": [
            {"path": f.path, "sha256": f.sha256, "size": f.size}
            for f in sorted(manifest.files, key=lambda f: f.path)
        ],
        "allow_downgrade": manifest.allow_downgrade,
    }
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse(data: bytes) -> Manifest:
    """Check a manifest's shape; BadManifest says what is wrong."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeError, ValueError) as exc:
        raise BadManifest("manifest is not UTF-8 JSON") from exc
    if not isinstance(obj, dict):
        raise BadManifest("manifest must be an object")
    version = obj.get("version")
    if not valid_version(version):
        raise BadManifest("manifest version must match " + VERSION.pattern)
    assert isinstance(version, str)
    allow = obj.get("allow_downgrade", False)
    if not isinstance(allow, bool):
        raise BadManifest("allow_downgrade must be true or false")
    files = obj.get("files")
    if not isinstance(files, list) or not 0 < len(files) <= MAX_FILES:
        raise BadManifest(f"files must be a list of 1 to {MAX_FILES} entries")
    entries: list[FileEntry] = []
    for item in files:
        if not isinstance(item, dict):
            raise BadManifest("each file must be an object")
        path, digest, size = item.get("path"), item.get("sha256"), item.get("size")
        if not valid_path(path):
            raise BadManifest(f"bad file path {str(path)[:80]!r}")
        if not isinstance(digest, str) or not HEX64.match(digest):
            raise BadManifest(f"{path}: sha256 must be 64 lowercase hex characters")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadManifest(f"{path}: size must be a whole number of bytes")
        assert isinstance(path, str)
        entries.append(FileEntry(path, digest, size))
    paths = [e.path for e in entries]
    if len(set(paths)) != len(paths):
        raise BadManifest("a file is listed twice")
    return Manifest(version, tuple(sorted(entries, key=lambda e: e.path)), allow)


def parse_public_keys(text: str) -> tuple[str, ...]:
    """``FIRMWARE_PUBLIC_KEYS``: comma-separated 64-hex-character keys (ValueError if not)."""
    keys = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    for key in keys:
        if not HEX64.match(key):
            raise ValueError(f"not a 64-hex-character Ed25519 public key: {key[:16]}...")
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key))
    return keys


def verify(data: bytes, signature: str, public_keys: tuple[str, ...]) -> str:
    """The first key whose signature over ``data`` checks out; BadSignature if none."""
    signature = signature.strip()
    if not HEX128.match(signature):
        raise BadSignature("signature must be 128 lowercase hex characters")
    raw = bytes.fromhex(signature)
    for key in public_keys:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(key)).verify(raw, data)
        except InvalidSignature:
            continue
        return key
    raise BadSignature("no configured firmware public key verifies this manifest")


def new_seed() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_from_hex(text: str) -> Ed25519PrivateKey:
    seed = text.strip().lower()
    if not HEX64.match(seed):
        raise ValueError("a private key file holds 64 hex characters (the 32-byte seed)")
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return key.sign(data).hex()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""``smartvend firmware``: keygen, build (sign) and add releases.

``keygen`` and ``build`` need nothing but files: the operator signs on their own
computer, where the private key stays. ``add`` stores a built release straight
in the database (like ``machine add``: run it where the server's settings are),
checking its signature against ``FIRMWARE_PUBLIC_KEYS`` as an upload does; from
elsewhere, upload through the dashboard or ``POST /api/firmware``.
"""

import argparse
import asyncio
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from api.errors import InvalidRequest
from api.firmware import manifest as mf

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
READ_BYTES = 65536


def keygen(out: Path) -> str:
    """Write a new private key (the seed, hex, mode 0600); returns the public key."""
    key = mf.new_seed()
    seed = key.private_bytes_raw().hex()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise InvalidRequest(f"{out} exists: a key is never overwritten") from exc
    with os.fdopen(fd, "w") as f:
        f.write(seed + "\n")
    return mf.public_hex(key)


def release_files(folder: Path) -> list[Path]:
    """The files of a release folder (its manifest and signature left out)."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in (MANIFEST, SIGNATURE):
            continue
        if not mf.valid_path(rel):
            raise InvalidRequest(f"{rel}: file names are letters, digits, _ . - only")
        found.append(path)
    return found


def build(folder: Path, version: str, key_file: Path, out: Path | None = None) -> Path:
    """Hash every file, write the manifest and its signature (and copy the files to ``out``)."""
    if not mf.valid_version(version):
        raise InvalidRequest(f"version must match {mf.VERSION.pattern}")
    key = mf.private_from_hex(key_file.read_text())
    entries = []
    files = release_files(folder)
    if not files:
        raise InvalidRequest(f"{folder} has no files")
    for path in files:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(READ_BYTES):
                digest.update(chunk)
        rel = path.relative_to(folder).as_posix()
        entries.append(mf.FileEntry(rel, digest.hexdigest(), path.stat().st_size))
    data = mf.encode(mf.Manifest(version, tuple(entries), False))
    target = out or folder
    target.mkdir(parents=True, exist_ok=True)
    if target.resolve() != folder.resolve():
        for path in files:
            dest = target / path.relative_to(folder)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    (target / MANIFEST).write_bytes(data)
    (target / SIGNATURE).write_text(mf.sign(key, data) + "\n")
    return target


def read_release(folder: Path) -> tuple[bytes, str, list[tuple[str, Path]]]:
    """A built release folder: manifest bytes, signature, (path, file) for each entry."""
    try:
        data = (folder / MANIFEST).read_bytes()
        signature = (folder / SIGNATURE).read_text().strip()
    except OSError as exc:
        raise InvalidRequest(f"{folder} is not a built release: {exc}") from exc
    manifest = mf.parse(data)
    return data, signature, [(f.path, folder / f.path) for f in manifest.files]


def cmd_keygen(args: argparse.Namespace) -> int:
    print(keygen(Path(args.out)))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    out = build(Path(args.dir), args.version, Path(args.key), Path(args.out) if args.out else None)
    print(f"wrote {out / MANIFEST} and {out / SIGNATURE}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from api.cli import _runtime
    from api.services.firmware import Upload

    data, signature, files = read_release(Path(args.dir))

    async def run() -> Any:
        handles = [path.open("rb") for _, path in files]
        try:
            uploads = [
                Upload(rel, _reader(handle))
                for (rel, _), handle in zip(files, handles, strict=True)
            ]
            async with _runtime() as rt:
                return await rt.services.firmware.add(
                    data, signature, uploads, rt.settings.firmware_keys, actor="cli"
                )
        finally:
            for handle in handles:
                handle.close()

    info = asyncio.run(run())
    print(f"release {info.version} stored: {info.file_count} files, {info.total_bytes} bytes")
    return 0


def _reader(handle: Any) -> Any:
    async def read(n: int) -> bytes:
        data: bytes = handle.read(n)
        return data

    return read


def add_commands(sub: Any) -> None:
    """The ``firmware`` command group, on ``smartvend``'s subparsers."""
    group = sub.add_parser("firmware", help="sign and store firmware releases").add_subparsers(
        dest="firmware_command", required=True
    )
    s = group.add_parser("keygen", help="a new signing key; prints its public key")
    s.add_argument("--out", required=True, help="private key file to create (mode 0600)")
    s.set_defaults(func=cmd_keygen)
    s = group.add_parser("build", help="write manifest.json and manifest.sig for a folder")
    s.add_argument("dir", help="the release's files (boot.py, main.py, .mpy modules)")
    s.add_argument("--version", required=True, help="the release's version, e.g. 1.2.0")
    s.add_argument("--key", required=True, help="private key file from keygen")
    s.add_argument("--out", help="folder for the built release (default: DIR itself)")
    s.set_defaults(func=cmd_build)
    s = group.add_parser("add", help="store a built release (checks its signature)")
    s.add_argument("dir", help="a folder written by build")
    s.set_defaults(func=cmd_add)

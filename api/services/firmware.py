"""Firmware releases kept in the database, served to machines a chunk at a time.

A release is its manifest's exact bytes, their signature and each file's bytes
in rows of ``FIRMWARE_CHUNK_BYTES``. The database is the one thing every worker
on every host shares, so any worker can serve any release, and an upload either
lands whole (one transaction) or not at all. A download reads one chunk row per
step, so memory stays at one chunk whatever the release's size.

The server only verifies: signing happens away from it, with the operator's key.
"""

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, InvalidRequest, NotFound
from api.firmware import manifest as mf
from api.services.context import Context
from schema.models import FIRMWARE_CHUNK_BYTES, FirmwareChunk, FirmwareFile, FirmwareRelease

ReadChunk = Callable[[int], Awaitable[bytes]]


class ReleaseExists(Conflict):
    code = "release_exists"


class ReleaseNotFound(NotFound):
    code = "release_not_found"


class FileMismatch(InvalidRequest):
    code = "file_mismatch"


@dataclass(frozen=True)
class Upload:
    """One file of an upload: its manifest path and a reader of up to n bytes ('' at end)."""

    path: str
    read: ReadChunk


@dataclass(frozen=True)
class ReleaseInfo:
    version: str
    signature: str
    key_id: str
    total_bytes: int
    file_count: int
    created_at: int
    created_by: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "signature": self.signature,
            "key": self.key_id,
            "total_bytes": self.total_bytes,
            "file_count": self.file_count,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


def _info(row: FirmwareRelease) -> ReleaseInfo:
    return ReleaseInfo(
        row.version,
        row.signature,
        row.key_id,
        row.total_bytes,
        row.file_count,
        row.created_at,
        row.created_by,
    )


class Firmware:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def add(
        self,
        manifest_bytes: bytes,
        signature: str,
        uploads: list[Upload],
        public_keys: tuple[str, ...],
        *,
        actor: str | None = None,
    ) -> ReleaseInfo:
        """Verify and store a release; every file's size and sha256 must match the manifest."""
        key = mf.verify(manifest_bytes, signature, public_keys)
        manifest = mf.parse(manifest_bytes)
        by_path = {u.path: u for u in uploads}
        missing = [f.path for f in manifest.files if f.path not in by_path]
        extra = sorted(set(by_path) - {f.path for f in manifest.files})
        if missing or extra:
            raise FileMismatch(f"files missing: {missing[:5]}; not in the manifest: {extra[:5]}")
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            if await s.get(FirmwareRelease, manifest.version) is not None:
                raise ReleaseExists(f"release {manifest.version} is already stored")
            s.add(
                FirmwareRelease(
                    version=manifest.version,
                    manifest=manifest_bytes,
                    signature=signature.strip(),
                    key_id=key,
                    total_bytes=manifest.total_bytes,
                    file_count=len(manifest.files),
                    created_at=now,
                    created_by=actor,
                )
            )
            await s.flush()
            for entry in manifest.files:
                s.add(FirmwareFile(version=manifest.version, **_entry(entry)))
                await _store_file(s, manifest.version, entry, by_path[entry.path].read)
        return await self.get(manifest.version)

    async def get(self, version: str) -> ReleaseInfo:
        async with self.ctx.db() as s:
            row = await s.get(FirmwareRelease, version)
            if row is None:
                raise ReleaseNotFound(f"no release {version!r}")
            return _info(row)

    async def list(self) -> list[ReleaseInfo]:
        async with self.ctx.db() as s:
            rows = await s.scalars(
                select(FirmwareRelease).order_by(FirmwareRelease.created_at.desc())
            )
            return [_info(r) for r in rows]

    async def manifest(self, version: str) -> tuple[bytes, str]:
        """The manifest's exact bytes and its signature."""
        async with self.ctx.db() as s:
            row = await s.get(FirmwareRelease, version)
            if row is None:
                raise ReleaseNotFound(f"no release {version!r}")
            return row.manifest, row.signature

    async def file(self, version: str, path: str) -> mf.FileEntry:
        async with self.ctx.db() as s:
            row = await s.get(FirmwareFile, (version, path))
            if row is None:
                raise ReleaseNotFound(f"no file {path!r} in release {version!r}")
            return mf.FileEntry(row.path, row.sha256, row.size)

    async def stream(self, version: str, path: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start``..``end`` (inclusive) of a file, one chunk row per read."""
        seq = start // FIRMWARE_CHUNK_BYTES
        pos = seq * FIRMWARE_CHUNK_BYTES
        while pos <= end:
            async with self.ctx.db() as s:
                data = await s.scalar(
                    select(FirmwareChunk.data).where(
                        FirmwareChunk.version == version,
                        FirmwareChunk.path == path,
                        FirmwareChunk.seq == seq,
                    )
                )
            if data is None:
                return
            lo = max(start - pos, 0)
            hi = min(end - pos + 1, len(data))
            yield bytes(data[lo:hi])
            pos += len(data)
            seq += 1

    async def stored_bytes(self) -> int:
        async with self.ctx.db() as s:
            total = await s.scalar(select(func.sum(FirmwareRelease.total_bytes)))
            return int(total or 0)


def _entry(entry: mf.FileEntry) -> dict[str, object]:
    return {"path": entry.path, "sha256": entry.sha256, "size": entry.size}


async def _store_file(s: AsyncSession, version: str, entry: mf.FileEntry, read: ReadChunk) -> None:
    digest = hashlib.sha256()
    size = 0
    seq = 0
    while True:
        data = await read(FIRMWARE_CHUNK_BYTES)
        if not data:
            break
        # a reader may return less than asked: fill the chunk so offsets stay fixed
        while len(data) < FIRMWARE_CHUNK_BYTES:
            more = await read(FIRMWARE_CHUNK_BYTES - len(data))
            if not more:
                break
            data += more
        size += len(data)
        if size > entry.size:
            raise FileMismatch(f"{entry.path}: larger than the manifest's {entry.size} bytes")
        digest.update(data)
        await s.execute(
            insert(FirmwareChunk),
            [{"version": version, "path": entry.path, "seq": seq, "data": data}],
        )
        seq += 1
    if size != entry.size:
        raise FileMismatch(f"{entry.path}: {size} bytes, the manifest says {entry.size}")
    if digest.hexdigest() != entry.sha256:
        raise FileMismatch(f"{entry.path}: sha256 differs from the manifest's")

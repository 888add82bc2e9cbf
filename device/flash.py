"""The board's file system as firmware updates use it: one small port.

:class:`Flash` wraps ``os`` and ``open`` with the few operations an update
needs (files and folders, atomic JSON, free space). Every change to the flash
goes through :meth:`Flash.write` or one of the path operations, so a test can
subclass it and cut the power at any one of them (see tests/micropython).

The update state file (``fw.json``) is written the way device/storage.py
writes ``state.json``: a ``.tmp`` file, then a rename over the old one; reading
falls back to a finished ``.tmp`` when the main file is missing or broken.
boot.py reads and writes the same file with its own copy of these few lines
(it must not depend on the release it may have to roll back).

Portable: runs under CPython and MicroPython (only ``json`` and ``os``).
"""

import json
import os

TYPE_CHECKING = False  # mypy reads the block below; no runtime ever runs it
if TYPE_CHECKING:
    from typing import Any, BinaryIO


class Flash:
    """Files under ``root`` ("" on the board: the file system's root)."""

    def __init__(self, root: str = "") -> None:
        self.root = root

    def path(self, name: str) -> str:
        return self.root + "/" + name

    # -- reading --

    def exists(self, name: str) -> bool:
        try:
            os.stat(self.path(name))
            return True
        except OSError:
            return False

    def size(self, name: str) -> int:
        try:
            return int(os.stat(self.path(name))[6])
        except OSError:
            return -1

    def is_dir(self, name: str) -> bool:
        try:
            return os.stat(self.path(name))[0] & 0x4000 != 0
        except OSError:
            return False

    def listdir(self, name: str) -> "list[str]":
        try:
            return sorted(os.listdir(self.path(name)))
        except OSError:
            return []

    def open_read(self, name: str) -> "BinaryIO":
        return open(self.path(name), "rb")

    def read(self, name: str) -> bytes:
        with open(self.path(name), "rb") as f:
            return f.read()

    def read_json(self, name: str) -> "Any":
        for candidate in (name, name + ".tmp"):
            try:
                with open(self.path(candidate)) as f:
                    data = json.loads(f.read())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                return data
        return None

    def free(self) -> int:
        """Bytes free on the file system holding ``root`` (-1: unknown)."""
        statvfs = getattr(os, "statvfs", None)
        if statvfs is None:
            return -1
        try:
            st = statvfs(self.path("") if self.root else "/")
        except OSError:
            return -1
        return int(st[0]) * int(st[3])

    # -- changing (each call is one step a power cut may interrupt) --

    def write(self, f: "BinaryIO", data: bytes) -> None:
        f.write(data)

    def open_write(self, name: str, append: bool = False) -> "BinaryIO":
        return open(self.path(name), "ab" if append else "wb")

    def rename(self, old: str, new: str) -> None:
        os.rename(self.path(old), self.path(new))

    def remove(self, name: str) -> None:
        os.remove(self.path(name))

    def mkdir(self, name: str) -> None:
        os.mkdir(self.path(name))

    def rmdir(self, name: str) -> None:
        os.rmdir(self.path(name))

    # -- built from the above --

    def makedirs(self, name: str) -> None:
        """Create ``name`` and its parents (``a/b/c``)."""
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if not self.is_dir(sub):
                self.mkdir(sub)

    def rmtree(self, name: str) -> None:
        """Remove ``name`` (a file or a folder and all it holds); nothing if missing."""
        if not self.exists(name):
            return
        if not self.is_dir(name):
            self.remove(name)
            return
        for entry in self.listdir(name):
            self.rmtree(name + "/" + entry)
        self.rmdir(name)

    def write_json(self, name: str, value: object) -> None:
        """Replace ``name`` with ``value`` as JSON: a power cut leaves the old or the new."""
        tmp = name + ".tmp"
        f = self.open_write(tmp)
        try:
            self.write(f, json.dumps(value).encode("utf-8"))
            _flush(f)
        finally:
            f.close()
        try:
            self.rename(tmp, name)
        except OSError:  # FAT refuses to rename over an existing file
            if self.exists(name):
                self.remove(name)
            self.rename(tmp, name)


def _flush(f: "BinaryIO") -> None:
    """Push a file's bytes to the medium before it is renamed into place."""
    f.flush()
    fsync = getattr(os, "fsync", None)
    if fsync is not None:  # CPython
        fsync(f.fileno())
        return
    sync = getattr(os, "sync", None)
    if sync is not None:  # MicroPython: flush the file system's caches
        sync()

"""The machine's flash: a tiny key-value store behind one narrow port.

A storage object has three methods, and that is all the controller uses:

* ``get(key, default=None)`` -> a JSON value (a copy: changing it changes nothing)
* ``put(key, value)`` -> stores one value, durably, before it returns
* ``update(mapping)`` -> stores several values in one write (all or nothing)

:class:`JsonFileStorage` keeps everything in one JSON file and replaces it
atomically-ish (write ``path.tmp``, then rename over ``path``), so a power cut
leaves either the old or the new file. In RAM it keeps each value as its JSON
text (smaller than the objects on MicroPython's heap) and streams the file out
key by key, never building it as one string. :class:`device.memory.MemoryStorage` is
the in-memory fake (the simulator's "flash"), kept apart so the board does not load it.

Portable: runs under CPython and MicroPython (only ``json`` and ``os``).
"""

import json
import os

TYPE_CHECKING = False  # mypy reads the block below; no runtime ever runs it
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Storage(Protocol):
        """The port the controller and the ledger use (see above)."""

        def get(self, key: str, default: object = None) -> Any: ...

        def put(self, key: str, value: object) -> None: ...

        def update(self, mapping: "dict[str, object]") -> None: ...


def _exists(path: str) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _read_json(path: str) -> object:
    with open(path) as f:
        return json.load(f)


class JsonFileStorage:
    """Flash as one JSON file (``/state.json`` on the board, a temp file on a PC).

    ``cold`` keys (the firmware's: ``("ledger",)``) live each in a file of their own,
    ``path + "." + key``, read from flash when asked for and never held in RAM: the
    ledger of 32 results with their lines is the largest value and is read only
    when a command arrives. An ``update`` writes the cold files first, then the main
    file, so a power cut between the two leaves the newer cold value beside older
    main keys (the controller checks for that: see ``Controller._boot``).
    """

    def __init__(self, path: str, cold: "tuple[str, ...]" = ()) -> None:
        self.path = path
        self.cold = cold
        self._text: dict[str, str] = {}  # key -> the value's JSON text
        loaded = _load(path)
        moved = False
        for key in loaded:
            if key in cold:  # a main file from before ``cold``: move the key out
                if not _exists(self._cold_path(key)):
                    _write(self._cold_path(key), [json.dumps(loaded[key])])
                moved = True
            else:
                self._text[key] = json.dumps(loaded[key])
        if moved:
            self._write_main(self._text)

    def _cold_path(self, key: str) -> str:
        return self.path + "." + key

    def get(self, key: str, default: object = None) -> "Any":
        if key in self.cold:
            found = _load(self._cold_path(key), None)
            return default if found is None else found
        text = self._text.get(key)
        if text is None:
            return default
        return json.loads(text)  # a copy, like reading the file again

    def put(self, key: str, value: object) -> None:
        self.update({key: value})

    def update(self, mapping: "dict[str, object]") -> None:
        texts = dict(self._text)
        main = False
        for key in mapping:
            if key in self.cold:
                _write(self._cold_path(key), [json.dumps(mapping[key])])
            else:
                texts[key] = json.dumps(mapping[key])
                main = True
        if main:
            self._write_main(texts)
            self._text = texts

    def snapshot(self) -> "dict[str, Any]":
        out: dict[str, Any] = {}
        for key in self._text:
            out[key] = json.loads(self._text[key])
        for key in self.cold:
            value = self.get(key)
            if value is not None:
                out[key] = value
        return out

    def _write_main(self, texts: "dict[str, str]") -> None:
        chunks = []
        sep = "{"
        for key in texts:
            chunks.append(sep + json.dumps(key) + ":")
            chunks.append(texts[key])
            sep = ","
        chunks.append("{}" if sep == "{" else "}")
        _write(self.path, chunks)


def _load(path: str, default: object = "empty") -> "Any":
    """A JSON file's value (a dict for the main file). A finished ``.tmp`` next to a
    missing or broken file means the power went between the write and the rename:
    the ``.tmp`` is newer."""
    for candidate in (path, path + ".tmp"):
        if not _exists(candidate):
            continue
        try:
            data = _read_json(candidate)
        except (OSError, ValueError):
            continue
        if default != "empty" or isinstance(data, dict):
            return data
    return {} if default == "empty" else default


def _write(path: str, chunks: "list[str]") -> None:
    """Write ``chunks`` to ``path.tmp``, flush it to flash, rename it over ``path``."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        synced = False
        fsync = getattr(os, "fsync", None)
        if fsync is not None:
            try:
                fsync(f.fileno())
                synced = True
            except (AttributeError, OSError):
                pass
    try:
        os.rename(tmp, path)
    except OSError:
        # FAT (and some older VFS) refuse to rename over an existing file.
        try:  # noqa: SIM105 (no contextlib on MicroPython)
            os.remove(path)
        except OSError:
            pass
        os.rename(tmp, path)
    sync = getattr(os, "sync", None)
    if not synced and sync is not None:
        sync()  # MicroPython: flush the filesystem's caches to flash

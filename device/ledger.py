"""The command ledger: the final results of the machine's last commands, in flash.

Kept under the storage key ``"ledger"`` as a list of result dicts (the exact
``results`` payloads), oldest first, at most :data:`SIZE` of them. A repeated
``cmd_id`` is answered from here and never runs the motor again.

Portable: runs under CPython and MicroPython.
"""

TYPE_CHECKING = False  # mypy reads the block below; no runtime ever runs it
if TYPE_CHECKING:
    from typing import Any

    from device.storage import Storage

    Result = dict[str, Any]  # a ``results`` payload

SIZE = 32
KEY = "ledger"


class Ledger:
    """The results live in flash (the firmware keeps them out of RAM: a ``cold`` key
    of device/storage.py); in RAM only the ``hash()`` of each id (a list of small
    ints on MicroPython, recomputed from the flash at every start), so a full ledger
    costs the heap about 150 bytes, not 32 ids or 32 decoded results. A hash that
    matches is confirmed against the flash."""

    def __init__(self, storage: "Storage", size: int = SIZE) -> None:
        self.storage = storage
        self.size = size
        self._keys: list[int] = []
        self.commit(self._entries())

    def _entries(self) -> "list[Result]":
        entries = self.storage.get(KEY, [])
        return [e for e in entries if isinstance(e, dict) and "cmd_id" in e]

    def get(self, cmd_id: str) -> "Result | None":
        if hash(cmd_id) not in self._keys:
            return None
        for entry in self._entries():
            if entry["cmd_id"] == cmd_id:
                return entry
        return None

    def __contains__(self, cmd_id: str) -> bool:
        return self.get(cmd_id) is not None

    def __len__(self) -> int:
        return len(self._keys)

    def ids(self) -> "list[str]":
        return [e["cmd_id"] for e in self._entries()]

    def with_result(self, result: "Result") -> "list[Result]":
        """The entries after recording ``result`` (not stored yet: see :meth:`commit`)."""
        entries = [e for e in self._entries() if e["cmd_id"] != result["cmd_id"]]
        entries.append(dict(result))
        return entries[-self.size :]

    def commit(self, entries: "list[Result]") -> None:
        """Adopt ``entries`` once the caller has written them (with other keys) to flash."""
        self._keys = [hash(e["cmd_id"]) for e in entries]

    def add(self, result: "Result", also: "dict[str, object] | None" = None) -> None:
        """Record ``result`` and write it, with the ``also`` keys, in one flash write."""
        entries = self.with_result(result)
        mapping: dict[str, object] = {KEY: entries}
        if also:
            mapping.update(also)
        self.storage.update(mapping)
        self.commit(entries)

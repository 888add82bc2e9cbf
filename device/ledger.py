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
    of device/storage.py); in RAM only their ids, as one string ``"\\nid1\\nid2\\n"``,
    so a full ledger costs the heap a few hundred bytes, not 32 decoded results."""

    def __init__(self, storage: "Storage", size: int = SIZE) -> None:
        self.storage = storage
        self.size = size
        self._ids = ""
        self.commit(self._entries())

    def _entries(self) -> "list[Result]":
        entries = self.storage.get(KEY, [])
        return [e for e in entries if isinstance(e, dict) and "cmd_id" in e]

    def get(self, cmd_id: str) -> "Result | None":
        if cmd_id not in self:
            return None
        for entry in self._entries():
            if entry["cmd_id"] == cmd_id:
                return entry
        return None

    def __contains__(self, cmd_id: str) -> bool:
        return "\n" + cmd_id + "\n" in self._ids  # ids never hold a newline

    def __len__(self) -> int:
        return len(self.ids())

    def ids(self) -> "list[str]":
        return self._ids.split("\n")[1:-1]

    def with_result(self, result: "Result") -> "list[Result]":
        """The entries after recording ``result`` (not stored yet: see :meth:`commit`)."""
        entries = [e for e in self._entries() if e["cmd_id"] != result["cmd_id"]]
        entries.append(dict(result))
        return entries[-self.size :]

    def commit(self, entries: "list[Result]") -> None:
        """Adopt ``entries`` once the caller has written them (with other keys) to flash."""
        self._ids = "\n" + "".join([e["cmd_id"] + "\n" for e in entries])

    def add(self, result: "Result", also: "dict[str, object] | None" = None) -> None:
        """Record ``result`` and write it, with the ``also`` keys, in one flash write."""
        entries = self.with_result(result)
        mapping: dict[str, object] = {KEY: entries}
        if also:
            mapping.update(also)
        self.storage.update(mapping)
        self.commit(entries)

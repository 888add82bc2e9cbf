"""The command ledger: the final results of the machine's last commands, in flash.

Kept under the storage key ``"ledger"`` as a list of result dicts (the exact
``results`` payloads), oldest first, at most :data:`SIZE` of them. A repeated
``cmd_id`` is answered from here and never runs the motor again.

Portable: runs under CPython and MicroPython.
"""

SIZE = 32
KEY = "ledger"


class Ledger:
    def __init__(self, storage: object, size: int = SIZE) -> None:
        self.storage = storage
        self.size = size
        entries = storage.get(KEY, [])
        self.entries = [e for e in entries if isinstance(e, dict) and "cmd_id" in e]

    def get(self, cmd_id: str) -> dict | None:
        for entry in self.entries:
            if entry["cmd_id"] == cmd_id:
                return dict(entry)
        return None

    def __contains__(self, cmd_id: str) -> bool:
        return self.get(cmd_id) is not None

    def __len__(self) -> int:
        return len(self.entries)

    def ids(self) -> list:
        return [e["cmd_id"] for e in self.entries]

    def with_result(self, result: dict) -> list:
        """The entries after recording ``result`` (not stored yet: see :meth:`commit`)."""
        entries = [e for e in self.entries if e["cmd_id"] != result["cmd_id"]]
        entries.append(dict(result))
        return entries[-self.size :]

    def commit(self, entries: list) -> None:
        """Adopt ``entries`` once the caller has written them (with other keys) to flash."""
        self.entries = entries

    def add(self, result: dict, also: dict | None = None) -> None:
        """Record ``result`` and write it, with the ``also`` keys, in one flash write."""
        entries = self.with_result(result)
        mapping = {KEY: entries}
        if also:
            mapping.update(also)
        self.storage.update(mapping)
        self.commit(entries)

"""Flash that lives in RAM: the simulator's and the tests' storage.

:class:`MemoryStorage` has the storage port of :mod:`device.storage` and stores
values as JSON text, so callers can never share mutable state with it, exactly as
with a real file. Kept out of device/storage.py so the board does not load it.

Portable: runs under CPython and MicroPython (only ``json``).
"""

import json

try:
    from micropython import const
except ImportError:  # CPython

    def const(value: int) -> int:
        return value


TYPE_CHECKING = const(0)  # mypy reads the block below; MicroPython compiles it away
if TYPE_CHECKING:
    from typing import Any


class MemoryStorage:
    """Flash that lives in RAM; survives a controller "reboot", not the process."""

    def __init__(self, initial: "dict[str, object] | None" = None) -> None:
        self._data: dict[str, str] = {}  # key -> the value's JSON text
        if initial:
            self.update(initial)

    def get(self, key: str, default: object = None) -> "Any":
        text = self._data.get(key)
        if text is None:
            return default
        return json.loads(text)

    def put(self, key: str, value: object) -> None:
        self._data[key] = json.dumps(value)

    def update(self, mapping: "dict[str, object]") -> None:
        encoded: dict[str, str] = {}
        for key in mapping:
            encoded[key] = json.dumps(mapping[key])
        for key in encoded:
            self._data[key] = encoded[key]

    def snapshot(self) -> "dict[str, Any]":
        """Every stored value (for tests and diagnostics)."""
        out: dict[str, Any] = {}
        for key in self._data:
            out[key] = json.loads(self._data[key])
        return out

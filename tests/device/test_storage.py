"""The flash port: JSON file and in-memory implementations."""

import json
from pathlib import Path

from device.storage import JsonFileStorage, MemoryStorage


def test_json_file_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    store = JsonFileStorage(path)
    assert store.get("boot", 0) == 0
    store.put("boot", 3)
    store.update({"ledger": [{"cmd_id": "a"}], "inflight": None})
    again = JsonFileStorage(path)
    assert again.get("boot") == 3
    assert again.get("ledger") == [{"cmd_id": "a"}]
    assert again.get("inflight", "missing") is None
    assert not Path(path + ".tmp").exists()


def test_values_are_copies(tmp_path: Path) -> None:
    for store in (MemoryStorage(), JsonFileStorage(str(tmp_path / "s.json"))):
        value = {"a": [1]}
        store.put("k", value)
        value["a"].append(2)
        got = store.get("k")
        assert got == {"a": [1]}
        assert isinstance(got, dict)
        got["a"].append(3)
        assert store.get("k") == {"a": [1]}


def test_power_cut_between_write_and_rename_keeps_newest(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{broken")
    (tmp_path / "state.json.tmp").write_text(json.dumps({"boot": 7}))
    assert JsonFileStorage(str(path)).get("boot") == 7


def test_corrupt_file_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("[1, 2]")
    store = JsonFileStorage(str(path))
    assert store.snapshot() == {}
    store.put("boot", 1)
    assert json.loads(path.read_text()) == {"boot": 1}

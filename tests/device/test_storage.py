"""The flash port: JSON file and in-memory implementations."""

import json
from pathlib import Path

from device.memory import MemoryStorage
from device.storage import JsonFileStorage
from tests.device.rig import T0, Rig


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


def test_cold_keys_live_in_their_own_file_and_not_in_ram(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = JsonFileStorage(str(path), ("ledger",))
    store.update({"ledger": [{"cmd_id": "a"}], "inflight": None, "boot": 2})
    assert json.loads((tmp_path / "state.json.ledger").read_text()) == [{"cmd_id": "a"}]
    assert json.loads(path.read_text()) == {"inflight": None, "boot": 2}
    assert "ledger" not in store._text  # read from flash when asked for
    assert store.get("ledger") == [{"cmd_id": "a"}]
    assert store.get("missing", 5) == 5 and JsonFileStorage(str(path), ("x",)).get("x", 1) == 1
    assert store.snapshot() == {"inflight": None, "boot": 2, "ledger": [{"cmd_id": "a"}]}
    store.put("ledger", [])  # only the cold file is written
    assert JsonFileStorage(str(path), ("ledger",)).get("ledger") == []


def test_a_main_file_from_before_cold_keys_moves_them_out(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"boot": 4, "ledger": [{"cmd_id": "old"}]}))
    store = JsonFileStorage(str(path), ("ledger",))
    assert store.get("ledger") == [{"cmd_id": "old"}] and store.get("boot") == 4
    assert json.loads(path.read_text()) == {"boot": 4}


def test_power_cut_between_the_cold_file_and_the_main_file(tmp_path: Path) -> None:
    """The ledger got the final result, the main file still names the command in
    flight: the machine records nothing twice and never reports it ``unknown``."""
    path = str(tmp_path / "state.json")
    result = {"cmd_id": "c1", "status": "succeeded", "dispensed": 1, "ts": T0}
    JsonFileStorage(path, ("ledger",)).update(
        {"ledger": [result], "inflight": {"cmd_id": "c1", "quantity": 1, "dispensed": 1}}
    )
    rig = Rig(storage=JsonFileStorage(path, ("ledger",)))  # type: ignore[arg-type]
    rig.connect()
    assert rig.storage.get("inflight") is None
    assert rig.ctrl.ledger.get("c1") == result and rig.results() == [result]  # sent again

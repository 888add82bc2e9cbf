"""A version on trial in the real firmware loop (main.py, host HAL): it gives up
after ``trial_s`` without the server, boot.py rolls back, and the old version
holds the ``failed`` ``rolled_back`` result for the command."""

import socket
from pathlib import Path
from typing import Any

import pytest

from device.flash import Flash
from device.hosthal import HostHal
from device.simfirmware import boot_module
from tests.device.board import load_main

TRIAL = {"current": "1.1.0", "previous": "1.0.0", "phase": "trial", "cmd_id": "u1", "boots": 1}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def board(tmp_path: Path) -> Flash:
    flash = Flash(str(tmp_path))
    for folder, version in (("current", "1.1.0"), ("previous", "1.0.0")):
        flash.makedirs(folder)
        (tmp_path / folder / "VERSION").write_text(version)
    flash.write_json("fw.json", TRIAL)
    return flash


def firmware(tmp_path: Path, trial_s: int) -> tuple[Any, HostHal]:
    hal = HostHal(str(tmp_path))
    config = {
        "machine_id": "fw-trial",
        "api_key": "k",
        "mqtt": {"host": "127.0.0.1", "port": _closed_port()},
        "trial_s": trial_s,
        "telemetry_s": 0,
    }
    fw = load_main().Firmware(hal, config)
    fw.start()
    return fw, hal


def test_within_trial_s_the_new_version_runs_on(tmp_path: Path) -> None:
    flash = board(tmp_path)
    fw, hal = firmware(tmp_path, 3600)
    assert fw.controller.config["fw"] == "1.1.0" and fw.controller.trial == "u1"
    fw.step()
    fw.step()
    assert hal.resets == 0
    assert flash.read_json("fw.json") == TRIAL


def test_unconfirmed_after_trial_s_it_rolls_back(tmp_path: Path) -> None:
    flash = board(tmp_path)
    fw, hal = firmware(tmp_path, 0)
    with pytest.raises(SystemExit):
        fw.step()  # no broker: never confirmed, and trial_s (0) is over
    assert hal.resets == 1
    assert flash.read_json("fw.json")["phase"] == "rollback"

    state = boot_module().select(flash)  # the reset
    assert state["current"] == "1.0.0" and state["report"]["cmd_id"] == "u1"
    assert (tmp_path / "current" / "VERSION").read_text() == "1.0.0"
    assert not (tmp_path / "previous").exists()

    old, hal = firmware(tmp_path, 0)
    assert old.controller.config["fw"] == "1.0.0" and old.controller.trial is None
    result = old.controller.ledger.get("u1")
    assert (result["status"], result["error"]) == ("failed", "rolled_back")
    assert old.controller.unsent == ["u1"]  # published once connected
    assert not flash.read_json("fw.json").get("report")  # recorded: boot.py's note cleared
    old.step()
    assert hal.resets == 0  # not on trial: no timer

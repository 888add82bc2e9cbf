"""A simulated machine's firmware files: real updates applied to a folder of its own.

:class:`SimFirmware` gives a virtual machine (device/virtual.py) the flash of a
board with firmware updates: ``current``, ``previous``, ``staging`` and
``fw.json`` under one directory per machine, chosen at every (simulated) boot
by the board's own boot.py and changed by the board's own updater
(device/ota.py), which downloads the release over HTTP from the server with
the machine's id and key. Faults, each a chance (0 disables it):

* ``hash_mismatch_rate``: per update, one byte of the download is flipped
  (``failed`` ``hash_mismatch``);
* ``crash_on_boot_rate``: per new version, the machine crashes at every boot of
  it, so boot.py rolls back after three boots (``failed`` ``rolled_back``);
* ``download_drop_rate``: per request and per chunk read, the link drops
  (the rest is fetched with ``Range``);
* ``download_delay_s``: a pause after every chunk (a slow link).

A machine that has never been updated starts with ``version`` in ``current``
(one ``VERSION`` file).
"""

import importlib.util
import os
import random
from pathlib import Path
from types import ModuleType
from typing import Any

from device import ota
from device.flash import Flash
from device.hosthal import http_get

BOOT_PY = Path(__file__).resolve().parent / "firmware" / "boot.py"
_boot: ModuleType | None = None


def boot_module() -> ModuleType:
    """device/firmware/boot.py, the board's own, loaded once."""
    global _boot
    if _boot is None:
        spec = importlib.util.spec_from_file_location("smartvend_board_boot", BOOT_PY)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _boot = module
    return _boot


class FirmwareFaults:
    def __init__(
        self,
        hash_mismatch_rate: float = 0.0,
        crash_on_boot_rate: float = 0.0,
        download_drop_rate: float = 0.0,
        download_delay_s: float = 0.0,
    ) -> None:
        self.hash_mismatch_rate = hash_mismatch_rate
        self.crash_on_boot_rate = crash_on_boot_rate
        self.download_drop_rate = download_drop_rate
        self.download_delay_s = download_delay_s


class _Corrupted:
    """A response whose first byte comes flipped."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.status = response.status
        self.first = True

    def read(self, n: int) -> bytes:
        data = bytes(self.response.read(n))
        if self.first and data:
            self.first = False
            data = bytes([data[0] ^ 0x01]) + data[1:]
        return data

    def close(self) -> None:
        self.response.close()


class _Flaky:
    """A response whose link may drop at any read (then the rest comes with Range)."""

    def __init__(self, response: Any, owner: "SimFirmware") -> None:
        self.response = response
        self.owner = owner
        self.status = response.status

    def read(self, n: int) -> bytes:
        owner = self.owner
        if owner.offline or owner.rng.random() < owner.faults.download_drop_rate:
            raise OSError("connection lost")
        return bytes(self.response.read(n))

    def close(self) -> None:
        self.response.close()


class SimFirmware:
    def __init__(
        self,
        directory: str,
        *,
        version: str = "1.0.0",
        http_url: str = "",
        keys: list[str] | None = None,
        api_key: str | None = None,
        machine_id: str = "",
        trial_s: float = 120.0,
        faults: FirmwareFaults | None = None,
        rng: random.Random | None = None,
    ) -> None:
        os.makedirs(directory, exist_ok=True)
        self.flash = Flash(directory)
        self.http_url = http_url
        self.keys = list(keys or [])
        self.api_key = api_key
        self.machine_id = machine_id  # sent with the key (X-Machine-Id)
        self.trial_s = trial_s
        self.faults = faults or FirmwareFaults()
        self.rng = rng or random.Random()
        self.crashing: dict[str, bool] = {}  # version -> crashes at boot (drawn once)
        self.offline = False  # set by the machine: no network, downloads fail too
        if self.flash.read_json(ota.STATE) is None and not self.flash.exists("current"):
            self.flash.makedirs("current")
            f = self.flash.open_write("current/VERSION")
            f.write(version.encode())
            f.close()
            self.flash.write_json(ota.STATE, {"current": version, "previous": None, "phase": None})

    def boot(self) -> dict[str, Any]:
        """What boot.py does at a reset: finish a switch, count a trial, roll back."""
        state: dict[str, Any] = boot_module().select(self.flash) or {}
        return state

    def crashes(self, state: dict[str, Any]) -> bool:
        """True when the version on trial crashes before it gets online."""
        if state.get("phase") != "trial":
            return False
        version = str(state.get("current"))
        if version not in self.crashing:
            self.crashing[version] = self.rng.random() < self.faults.crash_on_boot_rate
        return self.crashing[version]

    def updater(self, cmd: dict[str, Any], current: str) -> ota.Updater:
        corrupt = self.rng.random() < self.faults.hash_mismatch_rate
        config = {"api_key": self.api_key, "machine_id": self.machine_id}

        def fetch(url: str, offset: int) -> Any:
            if self.offline or self.rng.random() < self.faults.download_drop_rate:
                raise OSError("connection lost")
            response: Any = _Flaky(http_get(config, url, offset), self)
            if corrupt and "/files/" in url and offset == 0:
                response = _Corrupted(response)
            return response

        return ota.Updater(
            self.flash, cmd, self.keys, current, fetch, self.http_url, chunk=4096, retry_s=0.2
        )

    def version_file(self) -> str | None:
        """The ``VERSION`` file of ``current`` (a factory install), if any."""
        try:
            return self.flash.read("current/VERSION").decode()
        except OSError:
            return None

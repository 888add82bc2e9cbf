"""A firmware update through the real firmware loop (main.py) on the host HAL:
Mosquitto carries the command, a real HTTP server the release; the loop resets
into boot.py's switch and the new version reports ``succeeded``."""

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.flash import Flash
from device.hosthal import HostHal
from device.simfirmware import boot_module
from schema import messages, topics, updates
from tests.device.board import load_main
from tests.device.releases import build_release, public_hex, release_server, sample_files
from tests.device.server import FakeServer, desired_obj, fake_server

pytestmark = pytest.mark.mosquitto

MID = "fw-up"
NEW = "1.2.0"


class Board:
    """One life of the board: the firmware loop in a thread until it resets."""

    def __init__(self, flash: Path, config: dict[str, Any]) -> None:
        self.hal = HostHal(str(flash))
        self.firmware = load_main().Firmware(self.hal, config)
        self.stop = threading.Event()
        self.reset = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.firmware.run_forever(self.stop.is_set)
        except SystemExit:  # hal.reset(): the board restarts
            self.reset.set()
        except BaseException as exc:
            self.error = exc

    def power_off(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for client in self.hal.clients:
            client.abort()


def results(server: FakeServer, cmd_id: str) -> list[tuple[str, str | None]]:
    return [(r["status"], r.get("error")) for r in server.results(MID, cmd_id)]


async def test_update_through_the_firmware_loop(tmp_path: Path, mosquitto_port: int) -> None:
    now = int(time.time())
    key = Ed25519PrivateKey.generate()
    files = sample_files(NEW, 5000)
    signature = build_release(tmp_path / "releases", NEW, files, key)
    flash_dir = tmp_path / "flash"
    flash = Flash(str(flash_dir))
    flash_dir.mkdir()
    flash.makedirs("current")
    (flash_dir / "current" / "VERSION").write_text("1.0.0")
    flash.write_json("fw.json", {"current": "1.0.0", "previous": None, "phase": None})

    with release_server(tmp_path / "releases") as http:
        config = {
            "machine_id": MID,
            "api_key": "key-" + MID,
            "mqtt": {"host": "127.0.0.1", "port": mosquitto_port, "keepalive": 30},
            "http_url": http.url,
            "firmware_keys": [public_hex(key)],
            "trial_s": 60,
            "telemetry_s": 0,
        }
        async with fake_server(mosquitto_port) as server:
            online = messages.server_online(now)
            await server.client.publish(topics.SERVER_STATUS, online, qos=1, retain=True)
            old = Board(flash_dir, config)
            try:
                first = await server.wait_for(lambda r: r[0] == "status" and r[1] == MID)
                assert first[0][3]["fw"] == "1.0.0"
                await server.desired(MID, desired_obj(1, code="123456", now=now))
                cmd = {
                    "cmd_id": "u1",
                    "action": "update",
                    "firmware": {
                        "version": NEW,
                        "manifest_url": f"/api/firmware/{NEW}/manifest",
                        "signature": signature,
                    },
                    "issued_at": now,
                    "expires_at": now + 600,
                }
                payload = updates.encode_update(cmd)
                await server.client.publish(topics.cmd(MID, "u1"), payload, qos=1, retain=True)
                assert await asyncio.to_thread(old.reset.wait, 30), old.error
            finally:
                old.power_off()
            assert old.error is None
            steps = results(server, "u1")
            assert steps[0] == ("accepted", None)
            assert set(steps[1:]) == {("running", None)}
            assert (flash_dir / "staging" / "main.py").read_bytes() == files["main.py"]
            assert old.hal.calls.index("ntp") < old.hal.calls.index("http")

            state = boot_module().select(flash)  # the reset: boot.py switches
            assert state == {
                "current": NEW,
                "previous": "1.0.0",
                "phase": "trial",
                "cmd_id": "u1",
                "boots": 1,
            }
            new = Board(flash_dir, config)
            try:
                done = await server.wait_for(
                    lambda r: r[0] == "results" and r[2] == "u1" and r[3]["status"] == "succeeded"
                )
                assert done
                online_fw = [
                    r[3]["fw"]
                    for r in server.received
                    if r[0] == "status" and r[3] and r[3]["state"] == "online"
                ]
                assert online_fw == ["1.0.0", NEW]
            finally:
                new.power_off()
            assert new.error is None and not new.reset.is_set()

    for path, data in files.items():
        assert (flash_dir / "current" / path).read_bytes() == data
    assert (flash_dir / "previous" / "VERSION").read_text() == "1.0.0"
    assert flash.read_json("fw.json") == {"current": NEW, "previous": "1.0.0", "phase": None}
    bearers = {auth for _, auth, _ in http.requests}
    assert bearers == {"Bearer key-" + MID}
    assert set(http.machines) == {MID}  # the id with the key (X-Machine-Id)

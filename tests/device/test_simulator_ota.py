"""Simulated machines take firmware updates for real, over a real Mosquitto and a
real HTTP server: each applies the release to its own files, with faults."""

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device import simulate
from device.simfirmware import FirmwareFaults, SimFirmware
from device.simulator import Fleet
from device.virtual import Faults, VirtualMachine
from schema import messages, topics, updates
from tests.device.releases import build_release, public_hex, release_server, sample_files
from tests.device.server import FakeServer, desired_obj, fake_server

pytestmark = pytest.mark.mosquitto

NEW = "1.1.0"


def update_cmd(cmd_id: str, signature: str, now: int) -> bytes:
    return updates.encode_update(
        {
            "cmd_id": cmd_id,
            "action": "update",
            "firmware": {
                "version": NEW,
                "manifest_url": f"/api/firmware/{NEW}/manifest",
                "signature": signature,
            },
            "issued_at": now,
            "expires_at": now + 600,
        }
    )


def statuses(server: FakeServer, mid: str, cmd_id: str) -> list[tuple[str, str | None]]:
    return [(r["status"], r.get("error")) for r in server.results(mid, cmd_id)]


async def final(server: FakeServer, mid: str, cmd_id: str, within: float = 30) -> dict[str, Any]:
    finals = ("succeeded", "failed", "rejected")

    def is_final(r: Any) -> bool:
        return r[0] == "results" and r[1] == mid and r[2] == cmd_id and r[3]["status"] in finals

    return (await server.wait_for(is_final, within=within))[0][3]


async def test_fleet_applies_a_release_with_faults(tmp_path: Path, mosquitto_port: int) -> None:
    now = int(time.time())
    key = Ed25519PrivateKey.generate()
    files = sample_files(NEW, 20000)
    signature = build_release(tmp_path / "releases", NEW, files, key)
    faults = {
        "good": FirmwareFaults(),
        "hash": FirmwareFaults(hash_mismatch_rate=1.0),
        "crash": FirmwareFaults(crash_on_boot_rate=1.0),
        "drops": FirmwareFaults(download_drop_rate=0.3, download_delay_s=0.01),
        "away": FirmwareFaults(),
    }
    with release_server(tmp_path / "releases") as http:
        vms = {
            mid: VirtualMachine(
                mid,
                "key-" + mid,
                "127.0.0.1",
                mosquitto_port,
                faults=Faults(),
                firmware=SimFirmware(
                    str(tmp_path / "fw" / mid),
                    http_url=http.url,
                    keys=[public_hex(key)],
                    api_key="key-" + mid,
                    machine_id=mid,
                    trial_s=20,
                    faults=fw_faults,
                    rng=random.Random(3),  # the same drops on every run
                ),
                telemetry_s=0,
            )
            for mid, fw_faults in faults.items()
        }
        async with fake_server(mosquitto_port) as server:
            online = messages.server_online(now)
            await server.client.publish(topics.SERVER_STATUS, online, qos=1, retain=True)
            for vm in vms.values():
                vm.start()
            try:
                for vm in vms.values():
                    await vm.wait_for(vm.is_online)
                    await server.desired(vm.machine_id, desired_obj(1, code="123456", now=now))
                vms["away"].go_offline(3.0)  # off the network when the wave comes
                for mid in vms:
                    topic = topics.cmd(mid, "u-" + mid)
                    payload = update_cmd("u-" + mid, signature, now)
                    await server.client.publish(topic, payload, qos=1, retain=True)
                results = {
                    mid: await asyncio.wait_for(final(server, mid, "u-" + mid), 60) for mid in vms
                }
            finally:
                for vm in vms.values():
                    await vm.stop()

    assert results["good"]["status"] == "succeeded"
    assert results["drops"]["status"] == "succeeded"
    assert results["away"]["status"] == "succeeded"  # got the retained command on return
    assert (results["hash"]["status"], results["hash"]["error"]) == ("failed", "hash_mismatch")
    assert (results["crash"]["status"], results["crash"]["error"]) == ("failed", "rolled_back")

    for mid in ("good", "drops", "away"):
        flash = vms[mid].firmware.flash  # type: ignore[union-attr]
        for path, data in files.items():
            assert flash.read("current/" + path) == data, (mid, path)
        assert flash.read("previous/VERSION") == b"1.0.0"
        assert flash.read_json("fw.json") == {"current": NEW, "previous": "1.0.0", "phase": None}
        assert vms[mid].controller.config["fw"] == NEW
        fw = [
            r[3]["fw"]
            for r in server.received
            if r[0] == "status" and r[1] == mid and r[3] and r[3]["state"] == "online"
        ]
        assert fw[-1] == NEW  # the new version announced itself
        steps = statuses(server, mid, "u-" + mid)
        assert steps[0] == ("accepted", None) and steps[-1] == ("succeeded", None)
    for mid in ("hash", "crash"):
        sim = vms[mid].firmware
        assert sim is not None and sim.version_file() == "1.0.0"
        assert vms[mid].controller.config["fw"] == "1.0.0"
    assert vms["crash"].stats.crashes == 3  # three boots of 1.1.0, then the rollback
    assert http.ranged() > 0  # dropped downloads resumed from the staged size
    bearers = {auth for _, auth, _ in http.requests}
    assert bearers == {"Bearer key-" + mid for mid in vms}
    assert set(http.machines) == set(vms)  # each with its own id (X-Machine-Id)
    assert ("running", None) in statuses(server, "good", "u-good")


async def test_a_fleet_with_firmware_files(tmp_path: Path, mosquitto_port: int) -> None:
    now = int(time.time())
    key = Ed25519PrivateKey.generate()
    signature = build_release(tmp_path / "releases", NEW, sample_files(NEW, 3000), key)
    machines = [(f"sim-{i}", f"key-{i}") for i in range(3)]
    with release_server(tmp_path / "releases") as http:
        argv = ["--fw-dir", str(tmp_path / "fw"), "--http-url", http.url, "--trial-s", "30"]
        argv += ["--firmware-key", public_hex(key), "--crash-on-boot-rate", "0"]
        args = simulate.build_parser().parse_args(argv)
        async with (
            fake_server(mosquitto_port) as server,
            Fleet(
                machines,
                "127.0.0.1",
                mosquitto_port,
                fw_dir=args.fw_dir,
                http_url=args.http_url,
                firmware_keys=args.firmware_key,
                trial_s=args.trial_s,
                fw_faults=FirmwareFaults(crash_on_boot_rate=args.crash_on_boot_rate),
                telemetry_s=0,
                seed=1,
            ) as fleet,
        ):
            online = messages.server_online(now)
            await server.client.publish(topics.SERVER_STATUS, online, qos=1, retain=True)
            await fleet.wait_online()
            assert fleet.versions() == {"1.0.0": 3}
            for mid, _ in machines:
                payload = update_cmd("u-" + mid, signature, now)
                await server.client.publish(
                    topics.cmd(mid, "u-" + mid), payload, qos=1, retain=True
                )
            for mid, _ in machines:
                assert (await final(server, mid, "u-" + mid))["status"] == "succeeded"
            assert fleet.versions() == {NEW: 3}
    for mid, _ in machines:
        assert (tmp_path / "fw" / mid / "current" / "main.py").exists()

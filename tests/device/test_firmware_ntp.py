"""NTP before TLS: the firmware loop (main.py) on the host HAL opens no TLS
connection, MQTT or HTTPS download, before the clock has been set."""

import socket
from pathlib import Path
from typing import Any

from device import ota
from device.hosthal import HostHal
from tests.device.board import load_main

T0 = 1767225600


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _firmware(tmp_path: Path) -> tuple[Any, HostHal]:
    hal = HostHal(str(tmp_path))
    port = _closed_port()
    config = {
        "machine_id": "fw-ntp",
        "api_key": "k",
        "mqtt": {"host": "127.0.0.1", "port": port, "tls": True},
        "http_url": f"https://127.0.0.1:{port}",
        "telemetry_s": 0,
    }
    firmware = load_main().Firmware(hal, config)
    firmware.start()
    return firmware, hal


def test_no_tls_connection_before_ntp_answers(tmp_path: Path) -> None:
    firmware, hal = _firmware(tmp_path)
    hal.ntp_ok = False
    firmware.try_connect()
    firmware.try_connect()
    assert hal.calls == ["ntp", "ntp"]  # NTP tried, MQTT over TLS never opened
    assert not firmware.connected
    hal.ntp_ok = True
    firmware.try_connect()
    assert hal.calls == ["ntp", "ntp", "ntp", "mqtt"]  # the clock first, then TLS
    assert "mqtt: no TLS before the clock is set (NTP)" in hal.logs
    assert not any("TLS before the clock was set" in line for line in hal.logs)


def test_an_update_sets_the_clock_before_its_first_download(tmp_path: Path) -> None:
    firmware, hal = _firmware(tmp_path)
    cmd = {
        "cmd_id": "u1",
        "action": "update",
        "firmware": {
            "version": "1.1.0",
            "manifest_url": "/api/firmware/1.1.0/manifest",
            "signature": "0" * 128,
        },
        "issued_at": T0,
        "expires_at": T0 + 60,
    }
    firmware.perform(("update", cmd))
    ota.step(firmware)  # the manifest request fails (nothing listens): retried later
    assert hal.calls == ["ntp", "http"]
    assert firmware.updater is not None and not firmware.updater.finished

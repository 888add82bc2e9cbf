"""The real firmware loop (device/firmware/main.py) on CPython with the host HAL,
against a real Mosquitto, the server's part played by the test."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device.hosthal import TICK_MS, HostHal
from tests.device.board import load_main
from tests.device.server import FakeServer, cmd_obj, desired_obj, fake_server

MID = "fw-1"
MOTOR_MS = 300

pytestmark = pytest.mark.mosquitto


class RunningFirmware:
    def __init__(self, hal: HostHal, config: dict[str, Any]) -> None:
        self.hal = hal
        self.firmware = load_main().Firmware(hal, config)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="firmware", daemon=True)

    def _run(self) -> None:
        try:
            self.firmware.run_forever(self.stop.is_set)
        except BaseException as exc:
            self.error = exc
            raise

    async def lcd(self, expected: tuple[str, str]) -> None:
        await self.until(lambda: self.hal.lcd_device.lines == expected, self.hal.lcd_device)
        assert self.hal.lcd_device.lines == expected

    async def until(self, predicate: Callable[[], bool], recorder: Any) -> None:
        ok = await asyncio.to_thread(recorder.wait_for, predicate, 15.0)
        assert self.error is None, self.error
        assert ok, f"timed out; lcd history {self.hal.lcd_device.history}"


@pytest.fixture
def firmware(tmp_path: Path, mosquitto_port: int) -> Iterator[RunningFirmware]:
    flash = tmp_path / "flash"
    flash.mkdir()
    config = {
        "machine_id": MID,
        "api_key": "not-checked-by-this-broker",
        "mqtt": {"host": "127.0.0.1", "port": mosquitto_port, "keepalive": 30},
        "motor_ms": MOTOR_MS,
        "telemetry_s": 60,
        "message_s": 1,
    }
    running = RunningFirmware(HostHal(str(flash)), config)
    running.thread.start()
    yield running
    running.stop.set()
    running.thread.join(timeout=10)
    assert not running.thread.is_alive()


def is_result(cmd_id: str, status: str) -> Callable[[tuple[Any, ...]], bool]:
    return lambda r: r[0] == "results" and r[2] == cmd_id and r[3]["status"] == status


async def test_whole_vend_on_host_firmware(firmware: RunningFirmware, mosquitto_port: int) -> None:
    hal = firmware.hal
    async with fake_server(mosquitto_port) as server:
        online = await server.wait_for(lambda r: r[0] == "status" and r[3]["state"] == "online")
        assert online[0][3]["boot"] == 1 and online[0][3]["fw"] == "1.0.0"
        await vend(firmware, server)

        # the machine drops off the network without a goodbye: the broker sends its will
        hal.clients[-1].abort()
        lost = await server.wait_for(lambda r: r[0] == "status" and r[3]["state"] == "lost")
        assert lost[0][3] == {"state": "lost", "boot": 1}
        # ... and it comes back with a higher boot number
        back = await server.wait_for(
            lambda r: r[0] == "status" and r[3]["state"] == "online" and r[3]["boot"] == 2
        )
        assert back


async def vend(firmware: RunningFirmware, server: FakeServer) -> None:
    hal = firmware.hal
    now = int(time.time())

    await server.desired(MID, desired_obj(1, code="123456", now=now))
    await firmware.lcd(("Code 123456", "Rs 25.00"))

    await server.desired(MID, desired_obj(2, lock=True, now=now))
    await firmware.lcd(("In use", "Pay on phone"))

    await server.command(MID, cmd_obj("cmd-1", 2, now=now))
    done = await server.wait_for(is_result("cmd-1", "succeeded"))
    assert done[0][3]["dispensed"] == 2
    assert [(r["status"], r["dispensed"]) for r in server.results(MID, "cmd-1")] == [
        ("accepted", 0),
        ("running", 1),
        ("succeeded", 2),
    ]
    runs = hal.motor_device.durations_ms()
    assert len(runs) == 2
    for ms in runs:
        assert MOTOR_MS - TICK_MS < ms < MOTOR_MS + 250, runs  # timed in whole ticks
    reported = await server.wait_for(lambda r: r[0] == "reported" and r[3]["stock"] == 8)
    assert reported[-1][3]["desired_version"] == 2
    await firmware.lcd(("Thank you!", "Enjoy!"))

    # the server clears the finished command; a re-sent one is answered from the ledger
    await server.clear_command(MID, "cmd-1")
    await server.command(MID, cmd_obj("cmd-1", 2, now=now), retain=False)
    again = await server.wait_for(is_result("cmd-1", "succeeded"), count=2)
    assert again[1][3] == again[0][3]
    assert len(hal.motor_device.runs) == 2

    await server.desired(MID, desired_obj(3, code="654321", stock=8, now=now))
    await firmware.lcd(("Code 654321", "Rs 25.00"))
    assert hal.watchdog_device.feeds > 0

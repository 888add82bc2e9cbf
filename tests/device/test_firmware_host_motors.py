"""The real firmware loop (main.py) with several motors on the host HAL, against a
real Mosquitto: each line of an order turns its own motor, and a line whose slot
drops nothing (the IR beam saw no item) ends while the order goes on."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device.hosthal import HostHal
from tests.device.server import cmd_obj, desired_obj, fake_server
from tests.device.test_firmware_host import RunningFirmware, is_result

MID = "fw-6"
SIX = [{"ena": 25 + i, "in1": 26 + i, "in2": 27 + i} for i in range(0, 18, 3)]

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def six_motors(tmp_path: Path, mosquitto_port: int) -> Iterator[RunningFirmware]:
    flash = tmp_path / "flash"
    flash.mkdir()
    config = {
        "machine_id": MID,
        "api_key": "not-checked-by-this-broker",
        "mqtt": {"host": "127.0.0.1", "port": mosquitto_port, "keepalive": 30},
        "motor_ms": 150,
        "drop_sensor": True,
        "settle_ms": 100,
        "telemetry_s": 0,
        "message_s": 1,
        "motors": SIX,
    }
    running = RunningFirmware(HostHal(str(flash)), config)
    running.thread.start()
    yield running
    running.stop.set()
    running.thread.join(timeout=10)
    assert not running.thread.is_alive()


def slot(sid: str, motor: int, name: str) -> dict[str, Any]:
    price = {"amount": 2000, "currency": "INR"}
    return {"id": sid, "motor": motor, "name": name, "price": price, "stock": 4, "enabled": True}


async def test_an_order_of_three_lines_on_six_motors(
    six_motors: RunningFirmware, mosquitto_port: int
) -> None:
    hal = six_motors.hal
    assert len(hal.motor_devices) == 6
    now = int(time.time())
    async with fake_server(mosquitto_port) as server:
        await server.wait_for(lambda r: r[0] == "status" and r[3]["state"] == "online")
        desired = desired_obj(1, code="123456", stock=12, now=now)
        desired["slots"] = [slot("A1", 5, "Cola"), slot("B2", 1, "Chips"), slot("C3", 3, "Nuts")]
        await server.desired(MID, desired)
        await six_motors.until(
            lambda: hal.lcd_device.lines[1].startswith(("A1", "B2", "C3")), hal.lcd_device
        )

        # B2 is empty: its motor turns, nothing falls; the machine goes on with C3.
        stop = threading.Event()
        feeder = threading.Thread(target=drop_items, args=(hal, {1}, stop), daemon=True)
        feeder.start()
        lines = [
            {"slot": "A1", "motor": 5, "quantity": 2},
            {"slot": "B2", "motor": 1, "quantity": 1},
            {"slot": "C3", "motor": 3, "quantity": 1},
        ]
        try:
            await server.command(MID, {**cmd_obj("cmd-1", 4, now=now), "lines": lines})
            done = await server.wait_for(is_result("cmd-1", "failed"))
        finally:
            stop.set()
            feeder.join(timeout=10)
        final = done[0][3]
        assert (final["dispensed"], final["error"]) == (3, "not_dropped")
        assert final["lines"] == [
            {"slot": "A1", "dispensed": 2},
            {"slot": "B2", "dispensed": 0},
            {"slot": "C3", "dispensed": 1},
        ]
        turns = [len(m.runs) for m in hal.motor_devices]
        assert turns == [0, 1, 0, 1, 0, 2]  # each line on its own motor
        assert not any(m.is_on for m in hal.motor_devices)
        empty = await server.wait_for(lambda r: r[0] == "events" and r[3]["code"] == "not_dropped")
        assert empty[0][3]["detail"] == "slot B2 unit 1"
        running = [r for r in server.results(MID, "cmd-1") if r["status"] == "running"]
        assert running[-1]["lines"][0] == {"slot": "A1", "dispensed": 2}


def drop_items(hal: HostHal, empty: set[int], stop: threading.Event) -> None:
    """Play the IR beam: one item falls during each run of a motor not in ``empty``."""
    seen: set[tuple[int, int]] = set()
    while not stop.is_set():
        for index, motor in enumerate(hal.motor_devices):
            run = (index, len(motor.runs))
            if motor.is_on and index not in empty and run not in seen:
                seen.add(run)
                hal.drop_device.pulse()
        time.sleep(0.002)  # a sensor's polling interval, not a wait for the result

"""The real firmware loop (device/firmware/main.py on the host HAL) sells on the whole server."""

import asyncio
import importlib.util
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from device.hosthal import TICK_MS, HostHal
from schema.models import Command
from tests.e2e import flow
from tests.support.stack import running_stack

FIRMWARE_MAIN = Path(__file__).resolve().parents[2] / "device" / "firmware" / "main.py"
MID = "fw-e2e-1"
MOTOR_MS = 150
CODE = re.compile(r"^Code (\d{6})$")


class FirmwareThread:
    """``Firmware.run_forever`` in a thread, stopped and joined on exit."""

    def __init__(self, hal: HostHal, config: dict[str, Any]) -> None:
        spec = importlib.util.spec_from_file_location("smartvend_fw_main_e2e", FIRMWARE_MAIN)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.hal = hal
        self.firmware = module.Firmware(hal, config)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="firmware-e2e", daemon=True)

    def _run(self) -> None:
        try:
            self.firmware.run_forever(self.stop.is_set)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def __enter__(self) -> "FirmwareThread":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the firmware loop did not stop"
        assert self.error is None, self.error

    async def until(self, predicate: Callable[[], bool], recorder: Any, what: str) -> None:
        ok = await asyncio.to_thread(recorder.wait_for, predicate, flow.WAIT_S)
        assert self.error is None, self.error
        assert ok, f"timed out waiting for {what}; lcd history {self.hal.lcd_device.history}"

    async def code(self, other_than: str | None = None) -> str:
        lcd = self.hal.lcd_device

        def shown() -> str | None:
            found = CODE.match(lcd.lines[0])
            return found.group(1) if found else None

        await self.until(lambda: shown() not in (None, other_than), lcd, "a code on the LCD")
        code = shown()
        assert code is not None
        return code


def firmware_config(port: int, api_key: str) -> dict[str, Any]:
    return {
        "machine_id": MID,
        "api_key": api_key,
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive": 30},
        "motor_ms": MOTOR_MS,
        "message_s": 1,
        "telemetry_s": 60,
    }


async def test_host_firmware_sells_two(tmp_path: Path) -> None:
    flash = tmp_path / "flash"
    flash.mkdir()
    async with (
        running_stack(tmp_path, mqtt=True) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        key = await flow.register(stack.services, MID, stock=6, price=1500)
        hal = HostHal(str(flash))
        with FirmwareThread(hal, firmware_config(stack.settings.mqtt_port, key)) as fw:
            await flow.wait_online(stack.services, MID)
            code = await fw.code()
            assert hal.lcd_device.lines[1] == "Rs 15.00"

            paid = await flow.buy(http, code, 2, client_id="e2e-fw-shopper")
            views = await flow.order_ends(http, paid["order_id"])
            final = views[-1]
            assert (final["status"], final["dispensed"], final["amount"]) == ("dispensed", 2, 3000)

            runs = hal.motor_device.durations_ms()
            assert len(runs) == 2, runs
            assert all(MOTOR_MS - TICK_MS < ms < MOTOR_MS + 500 for ms in runs), runs
            assert ("In use", "Pay on phone") in hal.lcd_device.history
            assert ("Thank you!", "Enjoy!") in hal.lcd_device.history
            assert await fw.code(other_than=code) != code
            status = await stack.services.views.public_status(MID, "")
            assert status["stock"] == 4 and not status["locked"]
            # the flash keeps the finished command: a repeat is answered, never re-run
            async with stack.services.ctx.db() as s:
                command = await s.scalar(
                    select(Command).where(Command.order_id == paid["order_id"])
                )
            assert command is not None and command.status == "succeeded"
            stored = fw.firmware.controller.ledger.get(command.id)
            assert stored is not None and (stored["status"], stored["dispensed"]) == (
                "succeeded",
                2,
            )
            assert fw.firmware.controller.stock == 4

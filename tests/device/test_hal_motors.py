"""device/firmware/hal.py's motors and LCD on CPython, with a recording ``machine``
module standing in for the board's (the ESP32 itself is not here)."""

import importlib.util
import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from tests.device.board import FIRMWARE

EXAMPLE = json.loads((FIRMWARE / "config.example.json").read_text())


class Board:
    """Records what hal.py does to pins and PWM channels."""

    def __init__(self) -> None:
        self.levels: dict[int, int] = {}  # pin -> last value driven
        self.pwm: dict[int, int] = {}  # pin -> duty_u16

    def module(self) -> types.ModuleType:
        board = self
        machine = types.ModuleType("machine")

        class Pin:
            OUT = 1
            IN = 0
            PULL_UP = 2

            def __init__(self, pin: int, mode: int = 0, pull: Any = None, value: Any = None):
                self.pin = pin
                if value is not None:
                    board.levels[pin] = value

            def value(self, v: int | None = None) -> int:
                if v is not None:
                    board.levels[self.pin] = v
                return board.levels.get(self.pin, 0)

        class PWM:
            def __init__(self, pin: Pin, freq: int = 0, duty_u16: int = 0) -> None:
                self.pin = pin.pin
                board.pwm[self.pin] = duty_u16

            def duty_u16(self, duty: int) -> None:
                board.pwm[self.pin] = duty

        machine.Pin = Pin  # type: ignore[attr-defined]
        machine.PWM = PWM  # type: ignore[attr-defined]
        machine.I2C = object  # type: ignore[attr-defined]  # named in an annotation
        return machine


@pytest.fixture
def hal(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[types.ModuleType, Board]]:
    board = Board()
    umqtt = types.ModuleType("umqtt")
    simple = types.ModuleType("umqtt.simple")
    simple.MQTTClient = object  # type: ignore[attr-defined]
    for name, module in {
        "machine": board.module(),
        "network": types.ModuleType("network"),
        "ntptime": types.ModuleType("ntptime"),
        "umqtt": umqtt,
        "umqtt.simple": simple,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("board_hal", FIRMWARE / "hal.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module, board


def test_the_first_config_is_motor_0(hal: tuple[types.ModuleType, Board]) -> None:
    module, board = hal
    motors = module.motors({"pins": {"ena": 25, "in1": 26, "in2": 27}})
    assert len(motors) == 1 and module.motors({}) and len(module.motors({})) == 1
    motors[0].on()
    assert (board.levels[26], board.levels[27], board.pwm[25]) == (1, 0, 65535)
    motors[0].off()
    assert (board.levels[26], board.levels[27], board.pwm[25]) == (0, 0, 0)


def test_six_motors_from_the_example_config(hal: tuple[types.ModuleType, Board]) -> None:
    module, board = hal
    motors = module.motors(EXAMPLE)
    assert len(motors) == 6
    motors[3].on()  # one pin: ENB jumper on, IN4 to GND
    assert board.levels[16] == 1
    assert [board.levels[p] for p in (26, 4, 13, 17, 18)] == [0, 0, 0, 0, 0]
    motors[3].off()
    assert board.levels[16] == 0


def test_boot_drives_every_motor_pin_low(hal: tuple[types.ModuleType, Board]) -> None:
    module, board = hal
    board.levels = {pin: 1 for pin in (25, 26, 27, 4, 13, 16, 17, 18)}
    module.safe_outputs(EXAMPLE)
    assert board.levels == dict.fromkeys((25, 26, 27, 4, 13, 16, 17, 18), 0)
    board.levels = {25: 1, 26: 1, 27: 1}
    module.safe_outputs(None)  # no config yet: the first wiring's default pins
    assert board.levels == {25: 0, 26: 0, 27: 0}


def test_the_lcd_draws_the_rupee_sign_as_custom_character_0(
    hal: tuple[types.ModuleType, Board], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, _ = hal
    sent: list[tuple[int, int]] = []

    class Bus:
        def writeto(self, addr: int, buf: bytes) -> None:
            pass

    monkeypatch.setattr(module.time, "sleep_ms", lambda ms: None, raising=False)
    monkeypatch.setattr(module.time, "sleep_us", lambda us: None, raising=False)
    lcd = module.Lcd(Bus())
    monkeypatch.setattr(lcd, "_send", lambda value, rs: sent.append((value, rs)))
    lcd.show("A1 Cola \u20b920.00", "\u00e9")
    data = [value for value, rs in sent if rs]
    assert data[:14] == [*b"A1 Cola ", 0, *b"20.00"]
    assert data[16] == 0x3F  # other characters: "?"

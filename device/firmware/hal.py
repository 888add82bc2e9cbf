"""ESP32 hardware for the SmartVend firmware: the only module that touches it.

Everything the firmware loop (main.py) needs from the board is here, behind
small functions and classes; device/hosthal.py provides the same names on a PC.

* Wi-Fi (station mode, retried), NTP, the clock in Unix seconds
* an MQTT client (umqtt.simple) with TLS, last will and keepalive
* a 16x2 HD44780 LCD behind a PCF8574 I2C backpack, driven in 4-bit mode, with
  the rupee sign as custom character 0
* the vend motors, one H-bridge channel each (L298N style: ENA on PWM, IN1, IN2),
  from the config's ``motors`` list (or the single motor of ``pins``)
* the IR drop sensor (beam-break pulses counted in an interrupt), the door switch
* the watchdog
"""

import gc
import time

import machine
import network
import ntptime
from umqtt.simple import MQTTClient

TYPE_CHECKING = False  # mypy reads the block below; the board never runs it
if TYPE_CHECKING:
    from typing import Any

    from _mpy_shed.time_mp import _TicksMs as Ticks  # opaque in the stubs, an int on the board

# MicroPython's bare-metal ports may count time from 2000-01-01.
_EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0

_wlan = None
_dog = None  # the watchdog, fed during the long blocking waits below


def log(message: str) -> None:
    print("[smartvend]", message)


def flash_path(name: str) -> str:
    return "/" + name


# -- time --


def now() -> int:
    """Unix time in seconds (valid once :func:`sync_time` has succeeded)."""
    return time.time() + _EPOCH_OFFSET


def ticks_ms() -> "Ticks":
    return time.ticks_ms()


def ticks_diff(later: "Ticks", earlier: "Ticks") -> int:
    return time.ticks_diff(later, earlier)


def sleep_ms(ms: int) -> None:
    time.sleep_ms(ms)


def sync_time(config: "dict[str, Any]") -> bool:
    ntptime.host = config.get("ntp_host", "pool.ntp.org")
    try:
        ntptime.settime()
    except (OSError, OverflowError) as exc:
        log("ntp failed: " + repr(exc))
        return False
    return True


def reset() -> None:
    machine.reset()


# -- network --


def wifi_ok() -> bool:
    return _wlan is not None and _wlan.isconnected()


def connect_wifi(config: "dict[str, Any]") -> bool:
    """Join the configured network; tries ``retries`` times, ``wait_s`` each."""
    global _wlan
    wifi = config["wifi"]
    if _wlan is None:
        _wlan = network.WLAN(network.STA_IF)
        _wlan.active(True)
    wlan = _wlan
    if wlan.isconnected():
        return True
    for attempt in range(int(wifi.get("retries", 3))):
        log("wifi: joining " + wifi["ssid"] + " (attempt " + str(attempt + 1) + ")")
        try:
            wlan.connect(wifi["ssid"], wifi["password"])
        except OSError as exc:
            log("wifi: " + repr(exc))
        for _ in range(int(wifi.get("wait_s", 8)) * 10):
            if wlan.isconnected():
                log("wifi: up " + str(wlan.ifconfig()[0]))
                return True
            _feed()
            time.sleep_ms(100)
        try:  # noqa: SIM105 (no contextlib on MicroPython)
            wlan.disconnect()
        except OSError:
            pass
    return False


def metrics() -> "dict[str, int]":
    data = {"free_mem": gc.mem_free()}
    if _wlan is not None and _wlan.isconnected():
        try:  # noqa: SIM105 (no contextlib on MicroPython)
            data["rssi"] = _wlan.status("rssi")
        except (OSError, ValueError):
            pass
    return data


def _nodelay(sock: object) -> None:
    """Turn Nagle off: MQTT packets are small and umqtt writes them in pieces."""
    try:
        import socket

        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ImportError):
        pass  # a TLS socket, or a port without TCP_NODELAY


class Mqtt(MQTTClient):
    """umqtt.simple's client with Nagle off once connected."""

    def connect(self, clean_session: bool = True, timeout: object = None) -> bool:
        present = bool(super().connect(clean_session))
        _nodelay(self.sock)
        return present


def tls_context(config: "dict[str, Any]") -> "Any":
    """A TLS client context for the server (MQTT and downloads): checked against
    ``mqtt.ca_file`` when the config names one."""
    import tls

    context = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ca_file = config["mqtt"].get("ca_file")
    if ca_file:
        context.verify_mode = tls.CERT_REQUIRED  # type: ignore[attr-defined]  # not in stubs
        with open(ca_file, "rb") as f:
            context.load_verify_locations(cadata=f.read())
    else:
        context.verify_mode = tls.CERT_NONE  # type: ignore[attr-defined]
    return context


def mqtt(config: "dict[str, Any]") -> Mqtt:
    """A new MQTT client: client id = user = machine id, password = API key."""
    broker = config["mqtt"]
    context = tls_context(config) if broker.get("tls") else None
    port = int(broker.get("port", 8883 if context else 1883))
    return Mqtt(
        config["machine_id"],
        broker["host"],
        port=port,
        user=config["machine_id"],
        password=config["api_key"],
        keepalive=int(broker.get("keepalive", 30)),
        ssl=context,
    )


# -- HTTP(S) downloads for firmware updates --


def http_get(config: "dict[str, Any]", url: str, offset: int = 0) -> "Any":
    """GET ``url`` for a firmware update (download.py, imported on the first
    download: the heap between two updates does not carry it)."""
    import download

    return download.get(config, url, offset, tls_context)


# -- LCD: HD44780 through a PCF8574 (P0 RS, P1 RW, P2 E, P3 backlight, P4-P7 D4-D7) --

_RS = 0x01
_E = 0x04
_BACKLIGHT = 0x08
_RUPEE = 0x20B9  # drawn as CGRAM character 0, 5x8 dots:
_RUPEE_DOTS = (0x1F, 0x02, 0x1F, 0x02, 0x1C, 0x06, 0x03, 0x00)


class Lcd:
    def __init__(self, i2c: machine.I2C, addr: int = 0x27, cols: int = 16) -> None:
        self.i2c = i2c
        self.addr = addr
        self.cols = cols
        self.rows = ["", ""]
        self.buf = bytearray(1)
        time.sleep_ms(50)  # power-on settle
        self._out(0)
        # Reset into 8-bit mode three times, then switch to 4-bit (datasheet fig. 24).
        self._pulse(0x30)
        time.sleep_ms(5)
        self._pulse(0x30)
        time.sleep_ms(1)
        self._pulse(0x30)
        time.sleep_ms(1)
        self._pulse(0x20)
        for command in (0x28, 0x08, 0x01, 0x06, 0x0C):  # 2 lines 5x8, off, clear, entry, on
            self.command(command)
        self.command(0x40)  # CGRAM address 0: the rupee sign
        for dots in _RUPEE_DOTS:
            self._send(dots, _RS)
        self.command(0x80)

    def _out(self, bits: int) -> None:
        self.buf[0] = bits | _BACKLIGHT
        self.i2c.writeto(self.addr, self.buf)

    def _pulse(self, bits: int) -> None:
        self._out(bits | _E)
        time.sleep_us(1)
        self._out(bits)
        time.sleep_us(50)

    def _send(self, value: int, rs: int) -> None:
        self._pulse((value & 0xF0) | rs)
        self._pulse(((value << 4) & 0xF0) | rs)

    def command(self, value: int) -> None:
        self._send(value, 0)
        if value in (0x01, 0x02):  # clear and home are slow
            time.sleep_ms(2)

    def show(self, line1: str, line2: str) -> None:
        for row, text in ((0, line1), (1, line2)):
            text = (text + " " * self.cols)[: self.cols]
            if self.rows[row] == text:
                continue
            self.command(0x80 | (0x40 * row))
            for ch in text:
                code = ord(ch)
                if code == _RUPEE:
                    code = 0
                elif not 32 <= code < 127:
                    code = 0x3F
                self._send(code, _RS)
            self.rows[row] = text


class ConsoleLcd:
    """Stands in when no LCD answers on the bus: the machine still vends."""

    def show(self, line1: str, line2: str) -> None:
        log("lcd: " + line1 + " | " + line2)


def lcd(config: "dict[str, Any]") -> Lcd | ConsoleLcd:
    pins = config.get("pins", {})
    try:
        i2c = machine.I2C(
            int(pins.get("i2c_id", 0)),
            scl=machine.Pin(int(pins.get("scl", 22))),
            sda=machine.Pin(int(pins.get("sda", 21))),
            freq=100000,
        )
        return Lcd(i2c, int(config.get("lcd_addr", 0x27)))
    except OSError as exc:
        log("lcd: not found (" + repr(exc) + ")")
        return ConsoleLcd()


# -- motors, one H-bridge channel each --


class Motor:
    """One channel: IN1/IN2 set the direction, ENA (PWM) the speed. Without ``ena``
    the channel's ENA jumper stays on (full speed); without ``in2`` that input is
    wired to GND (a spiral turns one way): each saves a pin."""

    def __init__(
        self, ena: "int | None", in1: int, in2: "int | None", freq: int = 1000, duty: int = 100
    ) -> None:
        self.in1 = machine.Pin(in1, machine.Pin.OUT, value=0)
        self.in2 = None if in2 is None else machine.Pin(in2, machine.Pin.OUT, value=0)
        self.ena = None
        if ena is not None:
            self.ena = machine.PWM(machine.Pin(ena), freq=freq, duty_u16=0)
        self.duty = 65535 * max(0, min(100, duty)) // 100

    def on(self) -> None:
        self.in1.value(1)
        if self.in2 is not None:
            self.in2.value(0)
        if self.ena is not None:
            self.ena.duty_u16(self.duty)

    def off(self) -> None:
        if self.ena is not None:
            self.ena.duty_u16(0)
        self.in1.value(0)
        if self.in2 is not None:
            self.in2.value(0)


def _wired(config: "dict[str, Any] | None") -> "list[dict[str, Any]]":
    """The motors' pins: ``motors`` ([{"ena", "in1", "in2"}, ...], index = motor
    number), or else the single motor of ``pins`` (the first config) as motor 0."""
    config = config or {}
    wired = config.get("motors")
    if wired:
        return wired  # type: ignore[no-any-return]
    pins = config.get("pins", {})
    return [{"ena": pins.get("ena", 25), "in1": pins.get("in1", 26), "in2": pins.get("in2", 27)}]


def motors(config: "dict[str, Any]") -> "list[Motor]":
    hz = int(config.get("motor_pwm_hz", 1000))
    duty = int(config.get("motor_duty", 100))
    out = []
    for pins in _wired(config):
        ena, in2 = pins.get("ena"), pins.get("in2")
        ena = None if ena is None else int(ena)
        out.append(Motor(ena, int(pins["in1"]), None if in2 is None else int(in2), hz, duty))
    return out


def safe_outputs(config: "dict[str, Any] | None" = None) -> None:
    """Drive every motor's H-bridge inputs low as early as possible after reset."""
    for pins in _wired(config):
        for name in ("ena", "in1", "in2"):
            if pins.get(name) is not None:
                machine.Pin(int(pins[name]), machine.Pin.OUT, value=0)


# -- sensors --


class DropSensor:
    """Counts IR beam breaks (falling edges) in an interrupt, debounced."""

    def __init__(self, pin: int, debounce_ms: int = 30) -> None:
        self.count = 0
        self.last = time.ticks_ms()
        self.debounce_ms = debounce_ms
        self.pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
        self.pin.irq(trigger=machine.Pin.IRQ_FALLING, handler=self._irq)

    def _irq(self, pin: machine.Pin) -> None:
        t = time.ticks_ms()
        if time.ticks_diff(t, self.last) >= self.debounce_ms:
            self.count += 1
            self.last = t

    def take(self) -> int:
        """Pulses since the last call."""
        state = machine.disable_irq()
        count = self.count
        self.count = 0
        machine.enable_irq(state)
        return count


def drop_sensor(config: "dict[str, Any]") -> DropSensor | None:
    pin = config.get("pins", {}).get("drop")
    if pin is None or not config.get("drop_sensor"):
        return None
    return DropSensor(int(pin))


class Door:
    """A reed switch to ground: closed door pulls the pin low."""

    def __init__(self, pin: int) -> None:
        self.pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)

    def is_open(self) -> bool:
        return self.pin.value() == 1


def door(config: "dict[str, Any]") -> Door | None:
    pin = config.get("pins", {}).get("door")
    return None if pin is None else Door(int(pin))


class Watchdog:
    def __init__(self, timeout_ms: int) -> None:
        self.wdt = machine.WDT(timeout=timeout_ms) if timeout_ms > 0 else None

    def feed(self) -> None:
        if self.wdt is not None:
            self.wdt.feed()


def _feed() -> None:
    if _dog is not None:
        _dog.feed()


def watchdog(config: "dict[str, Any]") -> Watchdog:
    """Resets the board unless fed within ``watchdog_ms`` (0: no watchdog)."""
    global _dog
    _dog = Watchdog(int(config.get("watchdog_ms", 30000)))
    return _dog

"""The firmware's HAL on a PC: the real firmware loop (device/firmware/main.py)
runs under CPython against recording fakes and a real MQTT broker.

``HostHal`` offers the same names as device/firmware/hal.py. The LCD and the
motors (one per entry of the config's ``motors``, or one) record what they are
told (with monotonic timings) and let a test wait for a condition; the drop
sensor and door are driven by the test; flash is a directory; MQTT is
:class:`UmqttOverPaho`, a paho-mqtt client with the small blocking interface of
``umqtt.simple.MQTTClient`` that the firmware uses.
"""

import contextlib
import http.client
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

Predicate = Callable[[], bool]

TICK_MS = 1  # the resolution of ``ticks_ms``


class MQTTException(Exception):
    """The broker refused the connection (as umqtt.simple raises it)."""


class _Recorder:
    def __init__(self) -> None:
        self._changed = threading.Condition()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate: Predicate, timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` holds (re-checked on every change)."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)


class RecordingLcd(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.lines: tuple[str, str] = ("", "")
        self.history: list[tuple[str, str]] = []

    def show(self, line1: str, line2: str) -> None:
        self.lines = (line1, line2)
        self.history.append(self.lines)
        self._notify()


class RecordingMotor(_Recorder):
    """Records each run as ``[started, stopped_or_None]`` (time.monotonic)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[list[float | None]] = []

    @property
    def is_on(self) -> bool:
        return bool(self.runs) and self.runs[-1][1] is None

    def on(self) -> None:
        if not self.is_on:
            self.runs.append([time.monotonic(), None])
            self._notify()

    def off(self) -> None:
        if self.is_on:
            self.runs[-1][1] = time.monotonic()
            self._notify()

    def durations_ms(self) -> list[float]:
        return [(end - start) * 1000 for start, end in self.runs if end is not None and start]


class FakeDropSensor:
    def __init__(self) -> None:
        self._pending = 0
        self._lock = threading.Lock()

    def pulse(self, count: int = 1) -> None:
        with self._lock:
            self._pending += count

    def take(self) -> int:
        with self._lock:
            count, self._pending = self._pending, 0
        return count


class FakeDoor:
    def __init__(self) -> None:
        self.open = False

    def is_open(self) -> bool:
        return self.open


class FakeWatchdog:
    def __init__(self) -> None:
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1


class _Sock:
    """What the firmware sees as ``client.sock``: closing it drops the link."""

    def __init__(self, owner: "UmqttOverPaho") -> None:
        self._owner = owner

    def close(self) -> None:
        self._owner.abort()


class UmqttOverPaho:
    """umqtt.simple's client interface over paho-mqtt, single-threaded.

    Like umqtt, ``connect``, ``publish`` (QoS 1) and ``subscribe`` block until
    acknowledged, messages reach the callback from inside ``check_msg`` (or any
    blocking call), and a dead link raises ``OSError``. Keepalive pings are
    paho's own (``ping`` is accepted and does nothing more).
    """

    def __init__(
        self,
        client_id: str,
        server: str,
        port: int = 1883,
        user: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
        timeout: float = 10.0,
    ) -> None:
        self.server = server
        self.port = port
        self.keepalive = keepalive
        self.timeout = timeout
        self.cb: Callable[[bytes, bytes], None] | None = None
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
            reconnect_on_failure=False,
        )
        if user is not None:
            self._client.username_pw_set(user, password)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._connack: Any = None
        self._subacks: set[int] = set()
        self._dead = False
        self._delivered = 0
        self.sock = _Sock(self)

    # paho callbacks (run inside self._client.loop, on the caller's thread)
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connack = reason

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._delivered += 1
        if self.cb is not None:
            self.cb(msg.topic.encode("utf-8"), bytes(msg.payload))

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._dead = True

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self._subacks.add(mid)

    # the umqtt interface
    def set_callback(self, f: Callable[[bytes, bytes], None]) -> None:
        self.cb = f

    def set_last_will(self, topic: str, msg: bytes, retain: bool = False, qos: int = 0) -> None:
        self._client.will_set(topic, msg, qos=qos, retain=retain)

    def connect(self, clean_session: bool = True) -> bool:
        try:
            self._client.connect(self.server, self.port, keepalive=self.keepalive)
        except ValueError as exc:  # paho's complaint about bad arguments
            raise OSError(str(exc)) from exc
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._until(lambda: self._connack is not None, "CONNACK")
        if self._connack.is_failure:
            self.abort()
            raise MQTTException(str(self._connack))
        return False

    def publish(self, topic: str, msg: bytes, retain: bool = False, qos: int = 0) -> None:
        self._check()
        info = self._client.publish(topic, msg, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise OSError("publish failed: " + paho.error_string(info.rc))
        if qos > 0:
            self._until(info.is_published, "PUBACK")
        else:
            self._loop(0.0)

    def subscribe(self, topic: str, qos: int = 0) -> None:
        self._check()
        rc, mid = self._client.subscribe(topic, qos)
        if rc != paho.MQTT_ERR_SUCCESS:
            raise OSError("subscribe failed: " + paho.error_string(rc))
        self._until(lambda: mid in self._subacks, "SUBACK")

    def check_msg(self) -> int | None:
        self._check()
        before = self._delivered
        self._loop(0.0)
        return 0x30 if self._delivered != before else None

    def wait_msg(self) -> int | None:
        self._check()
        self._loop(1.0)
        return None

    def ping(self) -> None:
        self._check()

    def disconnect(self) -> None:
        try:
            self._client.disconnect()
            self._client.loop(timeout=0.0)  # flush the DISCONNECT
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT (the broker sends the will)."""
        self._dead = True
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    # internals
    def _check(self) -> None:
        if self._dead:
            raise OSError("connection lost")

    def _loop(self, timeout: float) -> None:
        rc = self._client.loop(timeout=timeout)
        if rc != paho.MQTT_ERR_SUCCESS or self._dead:
            self._dead = True
            raise OSError("connection lost: " + paho.error_string(rc))

    def _until(self, predicate: Predicate, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.abort()
                raise OSError("timed out waiting for " + what)
            self._loop(0.05)


def http_get(config: dict[str, Any], url: str, offset: int = 0) -> "HttpResponse":
    """GET ``url`` with the machine's API key as a bearer token and its id in
    ``X-Machine-Id`` (the server keeps keys hashed: the key alone does not say whose
    it is) and, from a non-zero ``offset``, ``Range: bytes=offset-``; the body is
    left to stream (``OSError`` on a network failure, as on the board)."""
    parts = urlsplit(url)
    conn_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = conn_class(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    headers = {"Authorization": "Bearer " + str(config.get("api_key") or "")}
    if config.get("machine_id"):
        headers["X-Machine-Id"] = str(config["machine_id"])
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise OSError(f"http: {exc!r}") from exc
    return HttpResponse(conn, response)


class HttpResponse:
    """An HTTP response whose body the firmware reads a chunk at a time."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self.conn = conn
        self.response = response
        self.status = response.status

    def read(self, n: int) -> bytes:
        try:
            return self.response.read(n)
        except (OSError, http.client.HTTPException) as exc:
            raise OSError(f"http: {exc!r}") from exc

    def close(self) -> None:
        self.conn.close()


class HostHal:
    """The firmware HAL on a PC (see device/firmware/hal.py for the names)."""

    def __init__(self, flash_dir: str, *, clock_skew: float = 0.0) -> None:
        self.flash_dir = flash_dir
        self.clock_skew = clock_skew
        self.lcd_device = RecordingLcd()
        self.motor_devices = [RecordingMotor()]  # one per configured motor
        self.drop_device = FakeDropSensor()
        self.door_device = FakeDoor()
        self.watchdog_device = FakeWatchdog()
        self.wifi_up = True
        self.logs: list[str] = []
        self.clients: list[UmqttOverPaho] = []
        self.ntp_ok = True
        self.clock_set = False
        self.calls: list[str] = []  # "ntp", "mqtt", "http" in the order they happened
        self.resets = 0

    def log(self, message: str) -> None:
        self.logs.append(message)

    def flash_path(self, name: str) -> str:
        return os.path.join(self.flash_dir, name)

    def now(self) -> int:
        return int(time.time() + self.clock_skew)

    def ticks_ms(self) -> int:
        """Whole milliseconds, as on the chip: a span the firmware times as N ticks
        lasted more than N - TICK_MS milliseconds."""
        return int(time.monotonic() * 1000)

    def ticks_diff(self, later: int, earlier: int) -> int:
        return later - earlier

    def sleep_ms(self, ms: int) -> None:
        time.sleep(ms / 1000)

    def sync_time(self, config: dict[str, Any]) -> bool:
        self.calls.append("ntp")
        self.clock_set = self.clock_set or self.ntp_ok
        return self.ntp_ok

    def reset(self) -> None:
        self.resets += 1
        raise SystemExit("reset")

    def http_get(self, config: dict[str, Any], url: str, offset: int = 0) -> "HttpResponse":
        """GET with the machine's key and a ``Range`` from ``offset``; the body streamed."""
        self.calls.append("http")
        if url.startswith("https://") and not self.clock_set:
            raise OSError("TLS before the clock was set")
        return http_get(config, url, offset)

    def wifi_ok(self) -> bool:
        return self.wifi_up

    def connect_wifi(self, config: dict[str, Any]) -> bool:
        return self.wifi_up

    def metrics(self) -> dict[str, int]:
        return {"free_mem": 100_000, "rssi": -55}

    def mqtt(self, config: dict[str, Any]) -> UmqttOverPaho:
        self.calls.append("mqtt")
        broker = config["mqtt"]
        if broker.get("tls") and not self.clock_set:
            raise OSError("TLS before the clock was set")
        client = UmqttOverPaho(
            config["machine_id"],
            broker["host"],
            port=int(broker.get("port", 1883)),
            user=config["machine_id"],
            password=config.get("api_key"),
            keepalive=int(broker.get("keepalive", 30)),
        )
        self.clients.append(client)
        return client

    def lcd(self, config: dict[str, Any]) -> RecordingLcd:
        return self.lcd_device

    @property
    def motor_device(self) -> RecordingMotor:
        """Motor 0 (the only one of a machine configured the v1 way)."""
        return self.motor_devices[0]

    def motors(self, config: dict[str, Any]) -> list[RecordingMotor]:
        """As hal.motors: one per entry of ``motors``, or one for the v1 ``pins``."""
        count = len(config.get("motors") or [None])
        while len(self.motor_devices) < count:
            self.motor_devices.append(RecordingMotor())
        return self.motor_devices[:count]

    def drop_sensor(self, config: dict[str, Any]) -> FakeDropSensor | None:
        return self.drop_device if config.get("drop_sensor") else None

    def door(self, config: dict[str, Any]) -> FakeDoor:
        return self.door_device

    def watchdog(self, config: dict[str, Any]) -> FakeWatchdog:
        return self.watchdog_device

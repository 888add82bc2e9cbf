"""The ``light`` load role: tens of thousands of machines per process on raw MQTT 3.1.1.

One ``asyncio.Protocol`` per machine, no MQTT library: a machine is a socket, a
small buffer and a few integers, so one process holds as many connections as its
open-files limit allows. Each machine connects as the firmware does (client id =
username = machine id, its key, a retained ``lost`` will at QoS 1), subscribes to its
``desired``, its ``cmd/+`` and the server's status, publishes its retained ``online``
status, acknowledges every QoS 1 message it gets and answers a command with
``accepted``. Commands on stdin:

* ``steady S``: every machine sends telemetry (QoS 0) every S seconds, at a phase
  of its own (one timer for the whole process, not one per machine);
* ``quiet``: steady telemetry stops; answered ``quiet`` with what was sent.

Every 5 s the process says ``progress`` (connected, online, lost, telemetry sent,
commands answered, RSS).
"""

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

from schema import messages, topics
from tests.benchmarks.measure import rss_bytes

CONNECT_WINDOW = 200  # CONNECTs waiting for their CONNACK at once, per process
TICK_S = 0.1
KEEPALIVE_S = 120  # telemetry every 60 s keeps the link alive; PINGREQ only when quiet
PROGRESS_S = 5.0


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _length(n: int) -> bytes:
    """MQTT's variable-length remaining length."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(mid: str, key: str, will_topic: str, will: bytes, keepalive: int) -> bytes:
    # clean session, will flag, will QoS 1, will retain, password, username
    flags = 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80
    body = _text("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big")
    body += _text(mid) + _text(will_topic) + _text(will) + _text(mid) + _text(key)
    return b"\x10" + _length(len(body)) + body


def publish_packet(topic: str, payload: bytes, qos: int, retain: bool, packet_id: int) -> bytes:
    header = 0x30 | (qos << 1) | (1 if retain else 0)
    body = _text(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return bytes([header]) + _length(len(body)) + body


def subscribe_packet(packet_id: int, filters: list[tuple[str, int]]) -> bytes:
    body = packet_id.to_bytes(2, "big") + b"".join(_text(f) + bytes([q]) for f, q in filters)
    return b"\x82" + _length(len(body)) + body


PINGREQ = b"\xc0\x00"


class Counters:
    def __init__(self) -> None:
        self.connected = 0  # CONNACK accepted
        self.refused = 0
        self.lost = 0  # links the broker or the network dropped
        self.telemetry = 0
        self.answered = 0


class Machine(asyncio.Protocol):
    """One machine's MQTT connection, driven by the bytes that arrive."""

    def __init__(
        self, mid: str, key: str, boot: int, counters: Counters, acked: Callable[[], None]
    ) -> None:
        self.mid = mid
        self.key = key
        self.boot = boot
        self.counters = counters
        self._acked = acked  # CONNACK in (accepted or not): the next CONNECT may go
        self.transport: asyncio.Transport | None = None
        self.online = False
        self._buffer = b""
        self._packet_id = 0
        self._answered = False  # its CONNACK came (or the link died first)
        self.sent = 0

    def _next_id(self) -> int:
        self._packet_id = self._packet_id % 65535 + 1
        return self._packet_id

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        will = messages.status_lost(self.boot)
        transport.write(
            connect_packet(self.mid, self.key, topics.status(self.mid), will, KEEPALIVE_S)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.online:
            self.counters.lost += 1
        elif not self._answered:  # dropped before its CONNACK: free its place in the window
            self._answered = True
            self._acked()
        self.online = False
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data
        while len(buffer) >= 2:
            length, shift, at = 0, 0, 1
            while True:
                if at >= len(buffer):
                    self._buffer = buffer
                    return
                byte = buffer[at]
                length |= (byte & 0x7F) << shift
                at += 1
                if not byte & 0x80:
                    break
                shift += 7
            end = at + length
            if end > len(buffer):
                break
            self._packet(buffer[0], buffer[at:end])
            buffer = buffer[end:]
        self._buffer = buffer

    def _packet(self, header: int, body: bytes) -> None:
        kind = header >> 4
        if kind == 2:  # CONNACK
            if not self._answered:
                self._answered = True
                self._acked()
            if body[1] != 0:
                self.counters.refused += 1
                if self.transport is not None:
                    self.transport.close()
                return
            self._online()
        elif kind == 3:  # PUBLISH
            qos = (header >> 1) & 3
            size = int.from_bytes(body[:2], "big")
            topic = body[2 : 2 + size].decode()
            at = 2 + size
            if qos:
                packet_id = body[at : at + 2]
                at += 2
                self._write(b"\x40\x02" + packet_id)  # PUBACK
            payload = body[at:]
            if payload and "/cmd/" in topic:
                self._answer(payload)

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _online(self) -> None:
        mid = self.mid
        filters = [
            (topics.desired(mid), 1),
            (topics.machine_filter("cmd", mid), 1),
            (topics.SERVER_STATUS, 1),
        ]
        online = messages.status_online(self.boot, "1.0.0", int(time.time()))
        self._write(
            subscribe_packet(self._next_id(), filters)
            + publish_packet(topics.status(mid), online, 1, True, self._next_id())
        )
        self.online = True
        self.counters.connected += 1

    def _answer(self, payload: bytes) -> None:
        cmd = messages.decode("cmd", payload)
        result = {"cmd_id": cmd["cmd_id"], "status": "accepted", "dispensed": 0}
        result["ts"] = int(time.time())
        body = messages.encode("results", result)
        self._write(publish_packet(topics.result(self.mid, cmd["cmd_id"]), body, 1, False, 1))
        self.counters.answered += 1

    def telemetry(self) -> None:
        if not self.online:
            return
        self.sent += 1
        body = {"ts": int(time.time()), "rssi": -60, "uptime_s": self.sent, "free_mem": 110_000}
        self._write(
            publish_packet(
                topics.telemetry(self.mid), messages.encode("telemetry", body), 0, False, 0
            )
        )
        self.counters.telemetry += 1


async def _connect_all(
    host: str, port: int, machines: list[Machine], window: asyncio.Semaphore
) -> None:
    loop = asyncio.get_running_loop()
    for machine in machines:
        await window.acquire()
        try:
            await loop.create_connection(lambda m=machine: m, host, port)  # type: ignore[misc]
        except OSError:
            window.release()
            machine.counters.refused += 1


async def run_light(cfg: dict[str, Any], commands: Any) -> None:
    host, port, boot = cfg["host"], int(cfg["port"]), int(cfg["boot"])
    counters = Counters()
    window = asyncio.Semaphore(CONNECT_WINDOW)
    fleet = [Machine(mid, key, boot, counters, window.release) for mid, key in cfg["machines"]]
    started = time.monotonic()
    _emit("started", machines=len(fleet))
    connecting = asyncio.create_task(_connect_all(host, port, fleet, window))
    steady: asyncio.Task[None] | None = None
    ready_said = False

    async def progress() -> None:
        nonlocal ready_said
        while True:
            await asyncio.sleep(PROGRESS_S)
            if not ready_said and counters.connected >= len(fleet):
                ready_said = True
                _emit("ready", machines=len(fleet), seconds=time.monotonic() - started)
            _emit(
                "progress",
                connected=counters.connected,
                online=sum(m.online for m in fleet),
                refused=counters.refused,
                lost=counters.lost,
                telemetry=counters.telemetry,
                answered=counters.answered,
                rss=rss_bytes(os.getpid()),
            )

    async def tick(period: float) -> None:
        """Machine ``i`` reports at ``i / len(fleet)`` of each period: one timer for all."""
        loop = asyncio.get_running_loop()
        begun = loop.time()
        done = 0  # reports due so far, over all machines and periods
        while True:
            await asyncio.sleep(TICK_S)
            due = int((loop.time() - begun) / period * len(fleet))
            for n in range(done, due):
                fleet[n % len(fleet)].telemetry()
            done = due

    async def pings() -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S / 2)
            if steady is None:
                for machine in fleet:
                    if machine.online:
                        machine._write(PINGREQ)

    reporter = asyncio.create_task(progress())
    pinger = asyncio.create_task(pings())
    while (line := await commands.next()) is not None:
        word, *args = line.split()
        if word == "steady":
            steady = asyncio.create_task(tick(float(args[0])))
            _emit("steady", machines=len(fleet))
        elif word == "quiet" and steady is not None:
            steady.cancel()
            steady = None
            _emit("quiet", sent=counters.telemetry, answered=counters.answered)
    del connecting, reporter, pinger
    os._exit(0)  # the whole fleet's power cut at once; the brokers' cleanup is not measured

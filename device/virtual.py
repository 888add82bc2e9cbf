"""One virtual vending machine: the real controller, simulated hardware, and
its own aiomqtt session (see device/simulator.py for the fleet and the faults).

Events reach the controller one at a time (a lock), and its actions are performed
in order, so ``accepted`` is published before the simulated motor starts. A
simulated reboot starts a new "life" on the same in-memory flash; tasks of the
previous life can no longer reach the controller.
"""

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import aiomqtt

from device import ota
from device.controller import Controller
from device.memory import MemoryStorage
from schema import topics, wire

if TYPE_CHECKING:
    from device.simfirmware import SimFirmware
    from device.storage import Storage

log = logging.getLogger("smartvend.simulator")

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
FINAL_OK = ("succeeded",)
FINAL_FAILED = ("failed", "unknown")
FINAL_REFUSED = ("rejected", "expired")


class _Stale(Exception):
    """An event from a machine's life before its last (simulated) reboot."""


class Faults:
    """Fault injection rates (0 disables each), and slots that always fail:
    ``jam_slots`` (the motor stalls on every run) and ``empty_slots`` (the motor
    turns, nothing falls), named by the shopper's slot id (``A1``)."""

    def __init__(
        self,
        fail_rate: float = 0.0,
        jam_rate: float = 0.0,
        drop_connection_rate: float = 0.0,
        reboot_rate: float = 0.0,
        clock_skew: float = 0.0,
        service_s: float = 5.0,
        jam_slots: "Iterable[str]" = (),
        empty_slots: "Iterable[str]" = (),
    ) -> None:
        self.fail_rate = fail_rate
        self.jam_rate = jam_rate
        self.drop_connection_rate = drop_connection_rate
        self.reboot_rate = reboot_rate
        self.clock_skew = clock_skew
        self.service_s = service_s
        self.jam_slots = frozenset(jam_slots)
        self.empty_slots = frozenset(empty_slots)


class Stats:
    def __init__(self) -> None:
        self.commands = 0
        self.vends_ok = 0
        self.vends_failed = 0
        self.refused = 0
        self.connects = 0
        self.reboots = 0
        self.crashes = 0  # boots of a new version that crashed (device/simfirmware.py)


class VirtualMachine:
    """One simulated machine: controller + fake hardware + MQTT session."""

    def __init__(
        self,
        machine_id: str,
        api_key: str | None,
        host: str,
        port: int,
        *,
        faults: Faults,
        motor_ms: int = 300,
        settle_ms: int = 50,
        rng: random.Random | None = None,
        tls_context: ssl.SSLContext | None = None,
        keepalive: int = 30,
        telemetry_s: float = 60,
        flash: "Storage | None" = None,
        motors: int = 1,
        firmware: "SimFirmware | None" = None,
    ) -> None:
        self.machine_id = machine_id
        self.api_key = api_key
        self.host = host
        self.port = port
        self.faults = faults
        self.rng = rng or random.Random()
        self.tls_context = tls_context
        self.keepalive = keepalive
        self.skew = self.rng.uniform(-faults.clock_skew, faults.clock_skew)
        self.config = {
            "motor_ms": motor_ms,
            "settle_ms": settle_ms,
            "drop_sensor": True,
            "telemetry_s": telemetry_s,
            "motors": motors,  # lines on motors beyond these are rejected
        }
        # The boot counter lives here: a machine started again on the same flash
        # announces a higher boot, as the contract asks of a real one.
        self.storage: Storage = flash if flash is not None else MemoryStorage()
        self.controller = Controller(machine_id, self.config, self.storage, self.rng.random)
        self.stats = Stats()
        self.lcd: tuple[str, str] = ("", "")
        self.motor_runs = 0
        self.motor_on = False
        self.slot_runs: dict[str, int] = {}  # motor runs per slot id (commands with lines)
        self.connected = False
        self.online = False
        self._client: aiomqtt.Client | None = None
        self._will: aiomqtt.Will | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions: set[asyncio.Task[None]] = set()
        self._hardware: set[asyncio.Task[None]] = set()
        self._started = 0.0
        self.generation = 0  # bumped by every reboot; older tasks' events are refused
        self.firmware = firmware  # its firmware files, when it takes updates
        self.offline_until = 0.0  # time.monotonic() before which it has no network
        self._counted: set[str] = set()

    # -- what tests look at --

    @property
    def state(self) -> str:
        return self.controller.mode()

    def is_online(self) -> bool:
        return self.online

    def now(self) -> float:
        return time.time() + self.skew

    async def wait_for(self, predicate: Callable[[], bool], within: float = 15.0) -> None:
        """Wait until ``predicate()`` holds; re-checked after every handled event."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    # -- lifecycle --

    def start(self, delay: float = 0.0) -> None:
        self._spawn(self._life(delay), self._tasks)

    async def stop(self) -> None:
        while self._tasks or self._hardware or self._sessions:
            tasks = [*self._tasks, *self._hardware, *self._sessions]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any, group: set[asyncio.Task[None]]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        group.add(task)

        def done(task: asyncio.Task[None]) -> None:
            group.discard(task)
            if task.cancelled():
                return
            error = task.exception()
            if error is not None and not isinstance(error, _Stale):
                log.warning("%s: task failed: %r", self.machine_id, error)

        task.add_done_callback(done)
        return task

    async def _life(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._started = time.monotonic()
        gen = self.generation
        state = None
        firmware = self.firmware
        if firmware is not None:  # boot.py first: it may switch or roll back versions
            state = firmware.boot()
            if state.get("current"):
                self.config["fw"] = state["current"]
                self.controller = Controller(
                    self.machine_id, self.config, self.storage, self.rng.random
                )
            if firmware.crashes(state):
                self.stats.crashes += 1
                self._spawn(self._crash(gen), self._tasks)
                return
        await self.event(("boot",), gen)
        if state:
            await self.event(("fw_boot", state), gen)
            if self.controller.trial is not None:
                self._spawn(self._trial_timer(gen), self._tasks)
        self._spawn(self._ticker(gen), self._tasks)
        self._spawn(self._connection_loop(gen), self._sessions)

    async def _connection_loop(self, gen: int) -> None:
        backoff = 0.5
        while gen == self.generation:
            offline = self.offline_until - time.monotonic()
            if offline > 0:  # no network: nothing to wait for but the time
                await asyncio.sleep(offline)
            if self.firmware is not None:
                self.firmware.offline = False
            if gen != self.generation:
                return
            try:
                await self._connect_once(gen)
                backoff = 0.5
            except aiomqtt.MqttError as exc:
                log.debug("%s: connection: %s", self.machine_id, exc)
            except _Stale:
                return  # the machine rebooted meanwhile; its new life has its own loop
            if gen != self.generation:
                return
            if self.connected:
                self.connected = self.online = False
                await self.event(("disconnected",), gen)
            await asyncio.sleep(backoff * (0.5 + self.rng.random()))
            backoff = min(backoff * 2, 10.0)

    async def _connect_once(self, gen: int) -> None:
        await self.event(("connecting",), gen)
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.machine_id,
            username=self.machine_id,
            password=self.api_key,
            will=self._will,
            keepalive=self.keepalive,
            clean_session=True,
            socket_options=NODELAY,
            tls_context=self.tls_context,
            timeout=10,
        )
        try:
            async with client:
                if gen != self.generation:
                    return
                self._client = client
                self.connected = True
                self.stats.connects += 1
                await self.event(("connected",), gen)
                if self.connected:
                    self.online = True
                    await self._notify()
                async for message in client.messages:
                    payload = message.payload
                    if not isinstance(payload, bytes | bytearray):
                        payload = b"" if payload is None else str(payload).encode()
                    await self.event(("message", message.topic.value, bytes(payload)), gen)
        finally:
            if gen == self.generation:
                self._client = None
            _collect_disconnect_error(client)

    # -- the controller loop --

    async def event(self, event: tuple[Any, ...], gen: int | None = None) -> None:
        """Hand ``event`` to the controller and perform its actions, one event at a time.

        ``gen`` is the life the caller belongs to: after a reboot, events from the
        previous life raise ``_Stale`` instead of reaching the new controller.
        """
        async with self._lock:
            life = self.generation
            if gen is not None and gen != life:
                raise _Stale
            actions = self.controller.handle(event, self.now())
            for action in actions:
                if life != self.generation:
                    raise _Stale  # rebooted while this event's actions were under way
                await self._perform(action)
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _perform(self, action: tuple[Any, ...]) -> None:
        name = action[0]
        if name == "lcd":
            self.lcd = (action[1], action[2])
        elif name == "will":
            self._will = aiomqtt.Will(action[1], action[2], qos=action[4], retain=action[3])
        elif name == "motor":
            self.motor_runs += 1
            slot = self._running_slot()
            if slot is not None:
                self.slot_runs[slot] = self.slot_runs.get(slot, 0) + 1
            motor = self._motor(action[1], action[2], action[3], self.generation, slot)
            self._spawn(motor, self._hardware)
        elif name == "motor_stop":
            self.motor_on = False
        elif name == "publish":
            self._count(action[1], action[2])
            await self._mqtt(
                lambda c: c.publish(action[1], action[2], qos=action[4], retain=action[3])
            )
        elif name == "subscribe":
            await self._mqtt(lambda c: c.subscribe(action[1], qos=action[2]))
        elif name == "update":
            self._spawn(self._update(action[1], self.generation), self._hardware)
        elif name == "fw_confirm" and self.firmware is not None:
            ota.confirm(self.firmware.flash)
            self._spawn(self._later(("fw_confirmed", action[1]), self.generation), self._hardware)
        elif name == "fw_reported" and self.firmware is not None:
            ota.reported(self.firmware.flash)

    async def _mqtt(self, call: Callable[[aiomqtt.Client], Any]) -> None:
        client = self._client
        if client is None or not self.connected:
            return
        try:
            await call(client)
        except aiomqtt.MqttError as exc:
            log.debug("%s: mqtt: %s", self.machine_id, exc)
            self.connected = self.online = False

    def _count(self, topic: str, payload: bytes) -> None:
        kind = topics.parse(topic)[0]
        if kind != "results":
            return
        result = wire.decode("results", payload)
        status = result["status"]
        if status not in ("accepted", "running"):
            if result["cmd_id"] in self._counted:
                return  # a repeat answered from the ledger
            self._counted.add(result["cmd_id"])
        if status == "accepted":
            self.stats.commands += 1
        elif status in FINAL_OK:
            self.stats.vends_ok += 1
        elif status in FINAL_FAILED:
            self.stats.vends_failed += 1
        elif status in FINAL_REFUSED:
            self.stats.refused += 1

    # -- simulated hardware --

    def _running_slot(self) -> str | None:
        """The slot id of the line now running (None for a command without lines)."""
        job = self.controller.job
        if job is None:
            return None
        slot: str | None = job["lines"][job["at"]][0]
        return slot

    async def _motor(
        self, run: int, run_ms: int, settle_ms: int, gen: int, slot: str | None = None
    ) -> None:
        faults = self.faults
        self.motor_on = True
        if slot in faults.jam_slots or self.rng.random() < faults.jam_rate:
            await asyncio.sleep(run_ms / 2000)
            self.motor_on = False
            await self.event(("jam",), gen)
            self._spawn(self._operator_visit(gen), self._hardware)
            return
        await asyncio.sleep(run_ms / 1000)
        stopped = self.motor_on
        self.motor_on = False
        if not stopped:
            return  # stopped from outside
        if slot not in faults.empty_slots and self.rng.random() >= faults.fail_rate:
            await self.event(("drop",), gen)
        await asyncio.sleep(settle_ms / 1000)
        await self.event(("motor_done", run), gen)

    async def _operator_visit(self, gen: int) -> None:
        await asyncio.sleep(self.faults.service_s)
        await self.event(("door", True), gen)
        await self.event(("door", False), gen)

    async def _ticker(self, gen: int) -> None:
        while True:
            await asyncio.sleep(1.0)
            uptime = int(time.monotonic() - self._started)
            await self.event(("tick", {"free_mem": 110_000, "rssi": -50 - uptime % 20}), gen)
            faults = self.faults
            if self.connected and self.rng.random() < faults.drop_connection_rate:
                self.drop_connection()
            if self.rng.random() < faults.reboot_rate:
                self.reboot()
                return  # the rebooted machine has a ticker of its own

    # -- firmware updates (device/ota.py on the files of device/simfirmware.py) --

    async def _later(self, event: tuple[Any, ...], gen: int) -> None:
        await self.event(event, gen)

    async def _update(self, cmd: dict[str, Any], gen: int) -> None:
        firmware = self.firmware
        if firmware is None:  # a machine simulated without firmware files
            failed = {"cmd_id": cmd["cmd_id"], "status": "failed", "dispensed": 0}
            failed.update({"error": "download_failed", "ts": int(self.now())})
            await self.event(("update_result", failed), gen)
            return
        updater = firmware.updater(cmd, self.controller.config["fw"])
        while gen == self.generation:
            if self.controller.job is not None or self.motor_on:
                await asyncio.sleep(0.05)  # a vend goes first, as on the board
                continue
            now = self.now()
            results = await asyncio.to_thread(updater.step, now)
            for result in results:
                await self.event(("update_result", result), gen)
            if updater.reboot:
                self.reboot()  # boot.py switches to the new version
                return
            if updater.finished:
                return
            if updater.wait_until > now:
                await asyncio.sleep(min(0.05, updater.wait_until - now))
            else:
                await asyncio.sleep(firmware.faults.download_delay_s)

    async def _crash(self, gen: int) -> None:
        """The version on trial crashes while starting: the board resets."""
        await asyncio.sleep(0.1)
        if gen == self.generation:
            self.reboot()

    async def _trial_timer(self, gen: int) -> None:
        """Not confirmed within ``trial_s``: give up, boot.py rolls back."""
        assert self.firmware is not None
        await asyncio.sleep(self.firmware.trial_s)
        if gen == self.generation and self.controller.trial is not None:
            ota.give_up(self.firmware.flash)
            self.reboot()

    def go_offline(self, seconds: float) -> None:
        """No network for ``seconds`` (MQTT and downloads); then it reconnects."""
        self.offline_until = time.monotonic() + seconds
        if self.firmware is not None:
            self.firmware.offline = True
        self.drop_connection()

    def drop_connection(self) -> None:
        """Cut the TCP link without DISCONNECT, as a failing Wi-Fi would."""
        client = self._client
        paho_client = getattr(client, "_client", None)  # aiomqtt keeps paho here
        sock = paho_client.socket() if paho_client is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def reboot(self) -> None:
        """Power cut: lose RAM, the link and the motor; keep the flash.

        The old MQTT session is not cancelled (cancelling makes aiomqtt try a
        DISCONNECT on the cut socket): its link is cut, it notices, and ends
        because its generation is over.
        """
        self.stats.reboots += 1
        self.generation += 1
        self._lock = asyncio.Lock()  # an old-life event may be stuck in a publish
        self.drop_connection()
        current = asyncio.current_task()
        for task in [*self._hardware, *self._tasks]:
            if task is not current:
                task.cancel()
        self.motor_on = False
        self.connected = self.online = False
        self._client = None
        self.controller = Controller(self.machine_id, self.config, self.storage, self.rng.random)
        self.lcd = ("", "")
        self._spawn(self._life(0.0), self._tasks)


def _collect_disconnect_error(client: aiomqtt.Client) -> None:
    """Mark a cut connection's error as seen.

    aiomqtt stores it in a future that only its message iterator reads; a session
    that ended elsewhere (a reboot mid-publish) would leave it "never retrieved".
    """
    future = getattr(client, "_disconnected", None)
    if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
        future.exception()

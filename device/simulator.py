"""A fleet of virtual vending machines speaking the SmartVend MQTT contract.

Each :class:`VirtualMachine` runs the same :class:`~device.controller.Controller`
as the ESP32 firmware, with in-memory flash (or a file per machine under
``flash_dir``, which outlives the process as a board's flash does), a simulated
motor, IR drop sensor and LCD, over its own aiomqtt connection (client id = username = machine id,
password = API key, TCP_NODELAY). Faults can be injected:

* ``fail_rate``: chance per unit that the item does not fall (``failed``)
* ``jam_rate``: chance per unit that the motor jams (``failed``, machine in
  ``error`` until a simulated operator opens and closes the door ``service_s`` later)
* ``drop_connection_rate``: chance per machine per second that the TCP link is cut
  (no DISCONNECT: the broker publishes the will)
* ``reboot_rate``: chance per machine per second of a power cut (a command
  interrupted mid-run is reported ``unknown`` after the reboot)
* ``clock_skew``: each machine's clock is off by up to this many seconds
* ``jam_slots``: slot ids (``"B3"``) whose motor stalls on every run: the line
  ends ``jam``, the order goes on with its next lines, and that motor is skipped
  until the simulated operator's visit ``service_s`` later
* ``empty_slots``: slot ids whose motor turns but drops nothing: the line ends
  ``not_dropped`` and the order goes on

Machines have ``slots`` motors each (1: the v1 machine), or their own number from
``slot_counts``; which slot is on which motor comes from the server's ``desired``,
as on a real machine.

With ``fw_dir``, each machine also takes firmware updates for real: its
firmware files live in ``fw_dir/<machine id>/`` and an update command makes it
download the release from ``http_url`` with its id and key, check it against
``firmware_keys``, switch at a simulated reboot and confirm or roll back, as a
board does (device/simfirmware.py, with the faults ``hash_mismatch_rate``,
``crash_on_boot_rate``, ``download_drop_rate``, ``download_delay_s``), and
``offline_rate`` (chance per machine per second) takes a machine off the
network for ``offline_s`` seconds.

Each machine sends telemetry every ``telemetry_s`` seconds (60; 0: none), jittered
like the firmware's, and waits a random 0.5 to 1.5 times its backoff before
reconnecting.

Used by ``python -m device.simulate``, by tests and by the server's demo mode::

    async with Fleet(machines=[("VM-1", key)], host="127.0.0.1", port=1883) as fleet:
        await fleet.wait_online()
        fleet.machine("VM-1").lcd
"""

import asyncio
import os
import random
import ssl
import time
from collections.abc import Iterable

from device.simfirmware import FirmwareFaults, SimFirmware
from device.storage import JsonFileStorage
from device.virtual import Faults, VirtualMachine

__all__ = ["Faults", "FirmwareFaults", "Fleet", "VirtualMachine"]


def flash_file(flash_dir: str, machine_id: str) -> JsonFileStorage:
    """A machine's flash as a file that outlives the simulator, boot counter included."""
    os.makedirs(flash_dir, exist_ok=True)
    return JsonFileStorage(os.path.join(flash_dir, f"{machine_id}.json"))


class Fleet:
    """Many virtual machines in one event loop, with a shared summary."""

    def __init__(
        self,
        machines: Iterable[tuple[str, str | None]],
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        fail_rate: float = 0.0,
        jam_rate: float = 0.0,
        drop_connection_rate: float = 0.0,
        reboot_rate: float = 0.0,
        clock_skew: float = 0.0,
        service_s: float = 5.0,
        motor_ms: int = 300,
        settle_ms: int = 50,
        seed: int | None = None,
        tls_context: ssl.SSLContext | None = None,
        connect_spread_s: float | None = None,
        telemetry_s: float = 60,
        flash_dir: str | None = None,
        slots: int = 1,
        slot_counts: dict[str, int] | None = None,
        jam_slots: Iterable[str] = (),
        empty_slots: Iterable[str] = (),
        fw_dir: str | None = None,
        http_url: str = "",
        firmware_keys: Iterable[str] = (),
        trial_s: float = 120.0,
        fw_version: str = "1.0.0",
        fw_faults: FirmwareFaults | None = None,
        offline_rate: float = 0.0,
        offline_s: float = 30.0,
    ) -> None:
        faults = Faults(
            fail_rate,
            jam_rate,
            drop_connection_rate,
            reboot_rate,
            clock_skew,
            service_s,
            jam_slots,
            empty_slots,
        )
        counts = slot_counts or {}
        keys = list(firmware_keys)
        self.offline_rate = offline_rate
        self.offline_s = offline_s
        self._offline_rng = random.Random(seed)
        self._offline_task: asyncio.Task[None] | None = None
        rng = random.Random(seed)
        self.machines: dict[str, VirtualMachine] = {}
        for machine_id, api_key in machines:
            firmware = None
            if fw_dir is not None:
                firmware = SimFirmware(
                    os.path.join(fw_dir, machine_id),
                    version=fw_version,
                    http_url=http_url,
                    keys=keys,
                    api_key=api_key,
                    machine_id=machine_id,
                    trial_s=trial_s,
                    faults=fw_faults,
                    rng=random.Random(rng.random()),
                )
            self.machines[machine_id] = VirtualMachine(
                machine_id,
                api_key,
                host,
                port,
                faults=faults,
                motor_ms=motor_ms,
                settle_ms=settle_ms,
                rng=random.Random(rng.random()),
                tls_context=tls_context,
                telemetry_s=telemetry_s,
                flash=None if flash_dir is None else flash_file(flash_dir, machine_id),
                motors=counts.get(machine_id, slots),
                firmware=firmware,
            )
        count = len(self.machines)
        self.connect_spread_s = (
            min(5.0, count / 200) if connect_spread_s is None else connect_spread_s
        )
        self.started = time.monotonic()

    async def __aenter__(self) -> "Fleet":
        self.started = time.monotonic()
        for index, vm in enumerate(self.machines.values()):
            vm.start(self.connect_spread_s * index / max(1, len(self.machines)))
        if self.offline_rate > 0:
            self._offline_task = asyncio.create_task(self._outages())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._offline_task is not None:
            self._offline_task.cancel()
            await asyncio.gather(self._offline_task, return_exceptions=True)
        await asyncio.gather(*(vm.stop() for vm in self.machines.values()))

    async def _outages(self) -> None:
        """Each second, each machine goes off the network with ``offline_rate``."""
        while True:
            await asyncio.sleep(1.0)
            for vm in self.machines.values():
                if self._offline_rng.random() < self.offline_rate:
                    vm.go_offline(self.offline_s)

    def versions(self) -> dict[str, int]:
        """How many machines run each firmware version."""
        out: dict[str, int] = {}
        for vm in self.machines.values():
            version = str(vm.controller.config["fw"])
            out[version] = out.get(version, 0) + 1
        return out

    def machine(self, machine_id: str) -> VirtualMachine:
        return self.machines[machine_id]

    async def wait_online(self, within: float = 30.0) -> None:
        """Wait until every machine is connected and subscribed."""
        async with asyncio.timeout(within):
            for vm in self.machines.values():
                await vm.wait_for(vm.is_online, within)

    def summary(self) -> dict[str, int]:
        vms = self.machines.values()
        return {
            "machines": len(self.machines),
            "connected": sum(vm.connected for vm in vms),
            "online": sum(vm.online for vm in vms),
            "commands": sum(vm.stats.commands for vm in vms),
            "vends_ok": sum(vm.stats.vends_ok for vm in vms),
            "vends_failed": sum(vm.stats.vends_failed for vm in vms),
            "refused": sum(vm.stats.refused for vm in vms),
            "motor_runs": sum(vm.motor_runs for vm in vms),
            "reboots": sum(vm.stats.reboots for vm in vms),
            "errors": sum(vm.state == "error" for vm in vms),
        }

    def summary_line(self) -> str:
        s = self.summary()
        elapsed = time.monotonic() - self.started
        return (
            f"{elapsed:7.1f}s machines {s['machines']} connected {s['connected']} "
            f"online {s['online']} | commands {s['commands']} vends ok {s['vends_ok']} "
            f"failed {s['vends_failed']} refused {s['refused']} | "
            f"in error {s['errors']} reboots {s['reboots']}"
        )

"""The vending machine's brain: events in, actions out, no I/O of its own.

``Controller(machine_id, config, storage).handle(event, now) -> [action, ...]``
is shared by the ESP32 firmware (device/firmware/main.py) and the simulator.
``now`` is Unix time in seconds (int or float). The only side effect is the
storage port (flash, see device/storage.py), written *before* ``handle``
returns, so anything the actions do happens after the state is safe.

Events (tuples):

=============================== ===============================================
``("boot",)``                   first event after power-up: recovers a command a
                                reboot interrupted (reported ``unknown``)
``("connecting",)``             about to connect: bumps the boot counter in
                                flash and answers with a ``will`` action
``("connected",)``              MQTT session up (CONNACK received)
``("disconnected",)``           MQTT session lost
``("message", topic, payload)`` an MQTT message (payload bytes)
``("tick",)`` / ``("tick", m)`` about once a second; ``m`` is a dict of extra
                                telemetry numbers (``rssi``, ``free_mem`` ...)
``("motor_done", run)``         the motor run ``run`` (from a ``motor``
                                action) finished, settle time included
``("drop",)``                   the IR drop sensor saw an item fall
``("jam",)``                    the motor stalled (driver-detected)
``("door", is_open)``           service door opened / closed; closing it
                                clears an ``error`` (the operator fixed it)
``("fw_boot", state)``          what boot.py left in ``/fw.json`` (device/ota.py):
                                a trial to confirm, or a rollback to report
``("update_result", result)``   a result of the running firmware update
                                (device/ota.py), published as it is
``("fw_confirmed", cmd_id)``    the trial version is kept: report ``succeeded``
=============================== ===============================================

Actions (tuples), to perform in order:

======================================================= =============================
``("will", topic, payload, retain, qos)``               configure the last will,
                                                        then connect
``("subscribe", topic_filter, qos)``                    subscribe
``("publish", topic, payload, retain, qos)``            publish (payload bytes)
``("motor", run, run_ms, settle_ms, motor)``            run motor ``motor`` (an index
                                                        into the config's ``motors``)
                                                        for one unit for ``run_ms``,
                                                        stop it, wait ``settle_ms``,
                                                        then send ``("motor_done", run)``
``("motor_stop",)``                                     stop the motor now; no
                                                        ``motor_done`` is expected
``("lcd", line1, line2)``                               show two lines (<= 16 chars)
``("update", cmd)``                                     start the firmware update
                                                        ``cmd`` (a decoded update
                                                        command, device/ota.py)
``("fw_confirm", cmd_id)``                              keep the trial version, then
                                                        send ``("fw_confirmed", cmd_id)``
``("fw_reported",)``                                    the rollback's result is in the
                                                        ledger: clear it from ``/fw.json``
======================================================= =============================

Flash keys: ``boot`` (int), ``desired`` (last applied desired dict, without its
slots), ``slots`` (the LCD's line per enabled slot, see below), ``version``,
``stock``, ``fault``, ``jammed`` (motors that jammed during a command with lines),
``ledger`` (see device/ledger.py) and ``inflight`` (``{"cmd_id", "quantity",
"dispensed"}``, plus ``lines`` ``[{"slot", "dispensed"}]`` for a command with
lines, written before every motor run and after every counted unit; cleared in
the same write that records the final result).

Several slots (contract section 5): a command's ``lines`` run in order, each on
its own motor; a line that jams or drops nothing ends that line and the next one
starts. The result is ``succeeded`` only when every line is complete, else
``failed`` with per-line counts (``lines`` on ``running`` and on every final
status). A jam during a command with lines marks only that motor (``jammed``):
later lines on it are skipped (0 dispensed) until the service door is opened and
closed; a jam during a command without lines stops the machine as before. A
command without lines is one line on motor 0, and its results carry no
``lines``, byte for byte as before. The slots of ``desired`` are kept only as the
LCD's idle lines (16 characters each, ``A1 Cola   ₹20.00``), one string under the
flash key ``slots`` (a file of its own on the board, read when the line shown
changes); a ``desired`` with one slot keeps the v1 screen.

Config keys (all optional): ``motor_ms`` (motor on-time per unit, 800),
``drop_sensor`` (bool: a unit counts only when the IR beam sees it fall),
``settle_ms`` (wait after the motor stops for the item to cross the beam, 600
with a sensor, 0 without), ``telemetry_s`` (seconds between telemetry
messages, 60; 0: none), ``telemetry_jitter`` (each interval is drawn from
``telemetry_s`` x (1 +/- this), 0.2; the first after a connection from 0 to
``telemetry_s``, so machines that reconnect together do not report together),
``max_quantity`` (10),
``message_s`` (seconds a thanks/failure message stays, 4), ``queue`` (commands
waiting behind a running one, 4), ``fw`` (firmware version string), ``motors``
(the wired motors: a list of pin dicts as the HAL reads them, or a count; absent:
not checked), ``slot_s`` (seconds each slot stays on the idle screen, 3).

``rand`` (optional) is a function returning a float in [0, 1) for the jitter:
the firmware passes its hardware-seeded ``random.random``; without one a small
generator seeded by the machine id is used, so a run is repeatable.

While a command runs, a ``running`` result with ``dispensed`` follows every unit
that counted, except the last (its final result follows at once).

Portable: runs under CPython and MicroPython (no typing at run time, no dataclasses
or enum; the types in the ``TYPE_CHECKING`` block are for mypy alone).
"""

from device import screen
from device.ledger import Ledger
from schema import topics, wire
from schema.errors import SchemaError

try:
    from micropython import const
except ImportError:  # CPython

    def const(value: int) -> int:
        return value


TYPE_CHECKING = const(0)  # mypy reads the block below; MicroPython compiles it away
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from device.storage import Storage

    Event = tuple[Any, ...]
    Action = tuple[Any, ...]
    Out = list[Action]
    Msg = dict[str, Any]  # a decoded or to-be-encoded payload (see schema/wire.py)

FW_VERSION = "1.0.0"
# Before NTP has set the clock, "now" is near 1970 (or 2000): command expiry
# cannot be judged, so commands are rejected rather than risk running stale ones.
MIN_VALID_TIME = 1600000000

IDLE = "idle"
LOCKED = "locked"
DISPENSING = "dispensing"
ERROR = "error"
OUT_OF_SERVICE = "out_of_service"

DEFAULTS: "dict[str, Any]" = {
    "motor_ms": 800,
    "drop_sensor": False,
    "settle_ms": None,
    "telemetry_s": 60,
    "telemetry_jitter": 0.2,
    "max_quantity": 10,
    "message_s": 4,
    "queue": 4,
    "fw": FW_VERSION,
    "slot_s": 3,
}
# A line of a running job: [slot id or None (a command without lines), motor,
# quantity, dispensed, error or None]; compiled away on MicroPython.
_SLOT = const(0)
_MOTOR = const(1)
_QTY = const(2)
_GOT = const(3)
_ERR = const(4)


def seeded(text: str) -> "Callable[[], float]":
    """A repeatable stand-in for ``random.random``: MINSTD seeded by ``text``."""
    state = [1]

    def draw() -> float:
        state[0] = state[0] * 48271 % 2147483647
        return state[0] / 2147483647

    for ch in text:
        state[0] = (state[0] * 131 + ord(ch)) % 2147483647
    for _ in range(3):  # neighbouring seeds (VM-1, VM-2) part ways after a few draws
        draw()
    return draw


class Controller:
    def __init__(
        self,
        machine_id: str,
        config: "dict[str, Any] | None" = None,
        storage: "Storage | None" = None,
        rand: "Callable[[], float] | None" = None,
    ) -> None:
        if not topics.is_machine_id(machine_id):
            raise SchemaError("invalid machine id")
        if storage is None:
            from device.memory import MemoryStorage

            storage = MemoryStorage()
        cfg = dict(DEFAULTS)
        if config:
            for key in config:
                cfg[key] = config[key]
        if cfg["settle_ms"] is None:
            cfg["settle_ms"] = 600 if cfg["drop_sensor"] else 0
        self.machine_id = machine_id
        self.config = cfg
        self.rand = rand or seeded(machine_id)
        self.storage = storage
        self.ledger = Ledger(storage)
        self.boot: int = storage.get("boot", 0)
        self.desired: Msg | None = storage.get("desired")
        self.version: int = storage.get("version", 0)
        self.stock: int | None = storage.get("stock")
        self.fault: str | None = storage.get("fault")
        self.jammed: list[int] = storage.get("jammed") or []
        # The idle screen's slot lines live in flash (16 characters each, one string:
        # a "cold" key on the board); RAM holds their count and the line on show.
        text = storage.get("slots")
        self.slot_count = len(text) // screen.WIDTH if text else 0
        self.slot_shown: tuple[int, str] | None = None  # (index, line)
        self.booted = False
        self.connected = False
        self.will_ready = False
        self.server_online = True
        self.door_open = False
        self.job: Msg | None = None  # the running command
        self.queue: list[Msg] = []  # decoded commands waiting to start
        self.unsent: list[str] = []  # cmd_ids whose final result still has to be published
        self.runs = 0  # motor run counter (the ``run`` of motor actions)
        self.message: tuple[str, str, float] | None = None  # (line1, line2, until)
        self.started_at: float | None = None
        self.next_telemetry: float = 0
        self.last_lcd: tuple[str, str] | None = None
        self.last_reported: tuple[str, int, int | None] | None = None
        self.update: str | None = None  # the cmd_id of the firmware update under way
        self.trial: str | None = None  # the update this version boots on trial for

    # -- the one entry point --

    def handle(self, event: "Event", now: float) -> "Out":
        out: Out = []
        kind = event[0] if event else None
        if not self.booted and kind != "boot":
            self._boot(now, out)
        method = getattr(self, "_on_" + str(kind), None)
        if method is not None:
            method(event, now, out)
        elif kind in ("update_result", "fw_boot", "fw_confirmed"):
            _updating().handle(self, event, now, out)  # device/updating.py
        self._start_next(now, out)
        self._report(now, out)
        self._refresh_lcd(now, out)
        return out

    # -- state, as the outside world sees it --

    def mode(self) -> str:
        if self.job is not None:
            return DISPENSING
        if self.fault:
            return ERROR
        desired = self.desired
        if desired is None:
            return IDLE
        if desired["mode"] == "out_of_service":
            return OUT_OF_SERVICE
        if desired.get("lock"):
            return LOCKED
        return IDLE

    def view(self, now: float) -> "dict[str, Any]":
        desired = self.desired or {}
        code = None
        display = desired.get("display")
        if display and display["expires_at"] > now:
            code = display["code"]
        message = None
        if self.message is not None and self.message[2] > now:
            message = (self.message[0], self.message[1])
        view: dict[str, Any] = {
            "mode": self.mode(),
            "ready": self.desired is not None,
            "connected": self.connected,
            "server_online": self.server_online,
            "code": code,
            "price": desired.get("price"),
            "stock": self.stock,
            "message": message,
            "fault": self.fault,
        }
        job = self.job
        if job is not None:
            lines = job["lines"]
            before = 0
            for line in lines[: job["at"]]:
                before += line[_QTY]
            view["unit"] = min(before + job["unit"] + 1, job["quantity"])
            view["quantity"] = job["quantity"]
            view["slot"] = lines[min(job["at"], len(lines) - 1)][_SLOT]
        elif self.slot_count:
            at = int(now // self.config["slot_s"]) % self.slot_count
            shown = self.slot_shown
            if shown is None or shown[0] != at:
                text = self.storage.get("slots") or ""
                start = at * screen.WIDTH
                shown = self.slot_shown = (at, text[start : start + screen.WIDTH].rstrip())
            view["slot"] = shown[1]
        return view

    def will(self) -> "tuple[str, bytes, bool, int]":
        """The last will for the current boot number: (topic, payload, retain, qos)."""
        return (topics.status(self.machine_id), wire.status_lost(self.boot), True, 1)

    # -- connection --

    def _boot(self, now: float, out: "Out") -> None:
        self.booted = True
        self.started_at = now
        inflight = self.storage.get("inflight")
        if inflight and inflight["cmd_id"] in self.ledger:
            # The power went between the ledger's file and the main file: the final
            # result was recorded (maybe never sent); send it again once connected.
            self.storage.put("inflight", None)
            self.unsent.append(inflight["cmd_id"])
        elif inflight:
            cmd_id = inflight["cmd_id"]
            result = _result(cmd_id, "unknown", inflight["dispensed"], now, "rebooted")
            if inflight.get("lines"):
                result["lines"] = inflight["lines"]
            self.ledger.add(result, {"inflight": None})
            self.unsent.append(cmd_id)

    def _on_boot(self, event: "Event", now: float, out: "Out") -> None:
        if not self.booted:
            self._boot(now, out)

    def _on_connecting(self, event: "Event", now: float, out: "Out") -> None:
        self.boot += 1
        self.storage.put("boot", self.boot)
        self.will_ready = True
        topic, payload, retain, qos = self.will()
        out.append(("will", topic, payload, retain, qos))

    def _on_connected(self, event: "Event", now: float, out: "Out") -> None:
        if not self.will_ready:  # connected without announcing it: still a new boot number
            self.boot += 1
            self.storage.put("boot", self.boot)
        self.will_ready = False
        self.connected = True
        mid = self.machine_id
        status = wire.status_online(self.boot, self.config["fw"], int(now))
        out.append(("publish", topics.status(mid), status, True, 1))
        out.append(("subscribe", topics.desired(mid), 1))
        out.append(("subscribe", topics.machine_filter("cmd", mid), 1))
        out.append(("subscribe", topics.SERVER_STATUS, 1))
        self.last_reported = None  # re-announce after every reconnect
        self.next_telemetry = now + self.config["telemetry_s"] * self.rand()
        for cmd_id in self.unsent:
            result = self.ledger.get(cmd_id)
            if result is not None:
                self._publish_result(result, out)
        self.unsent = []

    def _on_disconnected(self, event: "Event", now: float, out: "Out") -> None:
        self.connected = False
        self.will_ready = False

    # -- messages from the cloud --

    def _on_message(self, event: "Event", now: float, out: "Out") -> None:
        topic, payload = event[1], event[2]
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        try:
            kind, mid, cmd_id = topics.parse(topic)
        except SchemaError:
            return
        if kind == "server_status":
            if payload:
                try:  # noqa: SIM105 (no contextlib on MicroPython)
                    self.server_online = wire.decode(kind, payload)["state"] == "online"
                except SchemaError:
                    pass
                if self.server_online and self.trial is not None and self.connected:
                    out.append(("fw_confirm", self.trial))
            return
        if mid != self.machine_id:
            return
        if kind == "desired":
            self._desired(payload, now, out)
        elif kind == "cmd" and cmd_id is not None:  # a cmd topic always names one
            self._command(cmd_id, payload, now, out)

    def _desired(self, payload: bytes, now: float, out: "Out") -> None:
        if not payload:
            return
        try:
            desired = wire.decode("desired", payload)
        except SchemaError as exc:
            self._event(out, now, "error", "bad_desired", str(exc))
            return
        if desired["version"] <= self.version:
            return
        slots = desired.pop("slots", None)
        text = None
        if slots is not None and len(slots) > 1:  # one slot: the v1 screen, its price
            parts = []
            for slot in slots:
                if slot["enabled"]:
                    parts.append(screen.slot_line(slot))
            text = "".join(parts) or None
        self.desired = desired
        self.version = desired["version"]
        self.stock = desired["stock"]
        self.slot_count = len(text) // screen.WIDTH if text else 0
        self.slot_shown = None
        self.storage.update(
            {"desired": desired, "version": self.version, "stock": self.stock, "slots": text}
        )

    def _command(self, cmd_id: str, payload: bytes, now: float, out: "Out") -> None:
        if not payload:
            return  # the server cleared a finished command's retained message
        known = self.ledger.get(cmd_id)
        if known is not None:
            self._publish_result(known, out)
            return
        job = self.job
        if job is not None and job["cmd_id"] == cmd_id:
            self._publish_result(self._job_result("running", now), out)
            return
        for waiting in self.queue:
            if waiting["cmd_id"] == cmd_id:
                return
        try:
            cmd = wire.decode("cmd", payload)
        except SchemaError as exc:
            if b'"update"' in payload:  # a firmware update command: device/updating.py
                _updating().on_command(self, cmd_id, payload, now, out)
                return
            self._final(_result(cmd_id, "rejected", 0, now, "invalid: " + str(exc)), now, out)
            return
        if cmd["cmd_id"] != cmd_id:
            self._final(_result(cmd_id, "rejected", 0, now, "cmd_id_mismatch"), now, out)
            return
        if len(self.queue) >= self.config["queue"]:
            self._final(_unrun(cmd, "rejected", now, "busy"), now, out)
            return
        self.queue.append(cmd)

    # -- commands --

    def _refusal(self, cmd: "Msg", now: float) -> "tuple[str, str] | None":
        quantity = cmd["quantity"]
        if quantity < 1 or quantity > self.config["max_quantity"]:
            return ("rejected", "invalid_quantity")
        if now < MIN_VALID_TIME:
            return ("rejected", "clock_not_set")
        if now > cmd["expires_at"]:
            return ("expired", "expired")
        mode = self.mode()
        if mode == ERROR:
            return ("rejected", "machine_error")
        if mode == OUT_OF_SERVICE:
            return ("rejected", "out_of_service")
        if self.door_open:
            return ("rejected", "door_open")
        if self.stock is not None and quantity > self.stock:
            return ("rejected", "insufficient_stock")
        lines = cmd.get("lines")
        if lines is not None:
            total = 0
            wired = self.config.get("motors")
            count = len(wired) if isinstance(wired, list) else wired
            for line in lines:
                total += line["quantity"]
                if count is not None and line["motor"] >= count:
                    return ("rejected", "unknown_motor")
            if total != quantity:
                return ("rejected", "invalid_lines")
        return None

    def _start_next(self, now: float, out: "Out") -> None:
        while self.job is None and self.queue:
            cmd = self.queue.pop(0)
            if cmd["cmd_id"] in self.ledger:
                continue
            refusal = self._refusal(cmd, now)
            if refusal is not None:
                status, error = refusal
                self._final(_unrun(cmd, status, now, error), now, out)
                continue
            lines = []
            for line in cmd.get("lines") or ():
                lines.append([line["slot"], line["motor"], line["quantity"], 0, None])
            self.job = {
                "cmd_id": cmd["cmd_id"],
                "quantity": cmd["quantity"],
                "dispensed": 0,
                "unit": 0,  # the unit of the current line now running (from 0)
                "run": None,
                "lines": lines or [[None, 0, cmd["quantity"], 0, None]],
                "at": 0,  # the current line
                "multi": bool(lines),  # results carry lines
            }
            self.message = None
            self._publish_result(_result(cmd["cmd_id"], "accepted", 0, now), out)
            self._next_line(now, out)

    def _job_result(self, status: str, now: float, error: str | None = None) -> "Msg":
        job = self.job
        assert job is not None  # only while a command runs, as below
        result = _result(job["cmd_id"], status, job["dispensed"], now, error)
        if job["multi"]:
            result["lines"] = _counts(job)
        return result

    def _save_inflight(self) -> None:
        job = self.job
        assert job is not None
        inflight = {
            "cmd_id": job["cmd_id"],
            "quantity": job["quantity"],
            "dispensed": job["dispensed"],
        }
        if job["multi"]:
            inflight["lines"] = _counts(job)
        self.storage.update({"inflight": inflight, "stock": self.stock})

    def _run_unit(self, out: "Out") -> None:
        self._save_inflight()
        self.runs += 1
        job = self.job
        assert job is not None
        job["run"] = self.runs
        motor = job["lines"][job["at"]][_MOTOR]
        out.append(("motor", self.runs, self.config["motor_ms"], self.config["settle_ms"], motor))

    def _next_line(self, now: float, out: "Out") -> None:
        """Run the current line's next unit, or move on to the next line, or finish."""
        job = self.job
        assert job is not None
        lines = job["lines"]
        while job["at"] < len(lines):
            line = lines[job["at"]]
            if line[_GOT] < line[_QTY] and line[_ERR] is None:
                if job["multi"] and line[_MOTOR] in self.jammed:
                    line[_ERR] = "jam"  # jammed earlier: skipped until serviced
                    continue
                self._run_unit(out)
                return
            job["at"] += 1
            job["unit"] = 0
        error = None
        for line in lines:
            error = error or line[_ERR]
        if job["dispensed"] >= job["quantity"]:
            self._finish("succeeded", now, out)
        else:
            self._finish("failed", now, out, error or "incomplete")

    def _end_line(self, error: str, now: float, out: "Out") -> None:
        job = self.job
        assert job is not None
        job["lines"][job["at"]][_ERR] = error
        job["run"] = None
        if job["multi"]:
            self._next_line(now, out)
        else:
            self._finish("failed", now, out, error)

    def _count(self, units: int, now: float, out: "Out") -> None:
        job = self.job
        assert job is not None
        line = job["lines"][job["at"]]
        units = min(units, line[_QTY] - line[_GOT])
        if units <= 0:
            return
        line[_GOT] += units
        job["dispensed"] += units
        if self.stock is not None:
            self.stock = max(0, self.stock - units)
        self._save_inflight()
        if job["dispensed"] < job["quantity"]:  # progress; the last unit's result is final
            self._publish_result(self._job_result("running", now), out)

    def _on_motor_done(self, event: "Event", now: float, out: "Out") -> None:
        job = self.job
        if job is None or event[1] != job["run"]:
            return  # a stale run (stopped by a jam, or from before a reboot)
        line = job["lines"][job["at"]]
        if not self.config["drop_sensor"]:
            self._count(1, now, out)
        elif line[_GOT] < job["unit"] + 1:
            detail = "unit " + str(job["unit"] + 1)
            if job["multi"]:
                detail = "slot " + line[_SLOT] + " " + detail
            self._event(out, now, "error", "not_dropped", detail)
            self._end_line("not_dropped", now, out)
            return
        job["unit"] += 1
        self._next_line(now, out)

    def _on_drop(self, event: "Event", now: float, out: "Out") -> None:
        if self.job is None or not self.config["drop_sensor"]:
            self._event(out, now, "error", "unexpected_drop", "item fell while idle")
            return
        self._count(1, now, out)

    def _on_jam(self, event: "Event", now: float, out: "Out") -> None:
        job = self.job
        if job is not None and job["multi"]:
            line = job["lines"][job["at"]]
            detail = "slot " + line[_SLOT] + " motor " + str(line[_MOTOR]) + " stalled"
            self._event(out, now, "jam", "motor_jam", detail)
            if line[_MOTOR] not in self.jammed:
                self.jammed.append(line[_MOTOR])
                self.storage.put("jammed", self.jammed)
            out.append(("motor_stop",))
            self._end_line("jam", now, out)
            return
        self._event(out, now, "jam", "motor_jam", "motor stalled")
        self.fault = "jam"
        self.storage.put("fault", self.fault)
        if job is not None:
            out.append(("motor_stop",))
            self._finish("failed", now, out, "jam")

    def _finish(self, status: str, now: float, out: "Out", error: str | None = None) -> None:
        job = self.job
        assert job is not None
        result = self._job_result(status, now, error)
        self.ledger.add(result, {"inflight": None, "stock": self.stock})
        self.job = None
        if status == "succeeded":
            self._show(screen.thanks(), now)
        else:
            self._show(screen.failure(job["dispensed"], job["quantity"]), now)
        self._send_final(result, out)

    def _final(self, result: "Msg", now: float, out: "Out") -> None:
        """Record and publish a result for a command that never ran."""
        self.ledger.add(result)
        if result["status"] == "expired":
            self._show(screen.expired(), now)
        else:
            self._show(screen.rejected(result.get("error", "")), now)
        self._send_final(result, out)

    def _send_final(self, result: "Msg", out: "Out") -> None:
        if self.connected:
            self._publish_result(result, out)
        elif result["cmd_id"] not in self.unsent:
            self.unsent.append(result["cmd_id"])

    def _publish_result(self, result: "Msg", out: "Out") -> None:
        if not self.connected:
            return
        topic = topics.result(self.machine_id, result["cmd_id"])
        out.append(("publish", topic, wire.encode("results", result), False, 1))

    # -- hardware and time --

    def _on_door(self, event: "Event", now: float, out: "Out") -> None:
        is_open = bool(event[1])
        if is_open == self.door_open:
            return
        self.door_open = is_open
        if is_open:
            self._event(out, now, "door_open", "door", "service door opened")
            return
        self._event(out, now, "door_closed", "door", "service door closed")
        if self.fault or self.jammed:
            self.fault = None
            self.jammed = []
            self.storage.update({"fault": None, "jammed": None})

    def _on_tick(self, event: "Event", now: float, out: "Out") -> None:
        period = self.config["telemetry_s"]
        if not self.connected or not period or now < self.next_telemetry:
            return
        spread = self.config["telemetry_jitter"] * (2 * self.rand() - 1)
        self.next_telemetry = now + period * (1 + spread)
        data = {"ts": int(now), "uptime_s": int(now - (self.started_at or now))}
        extra = event[1] if len(event) > 1 and isinstance(event[1], dict) else {}
        for key in extra:
            data[key] = extra[key]
        try:
            payload = wire.encode("telemetry", data)
        except SchemaError:
            payload = wire.encode("telemetry", {"ts": int(now), "uptime_s": data["uptime_s"]})
        out.append(("publish", topics.telemetry(self.machine_id), payload, False, 0))

    def _event(self, out: "Out", now: float, kind: str, code: str, detail: str) -> None:
        if not self.connected:
            return
        obj = {"type": kind, "code": code, "detail": detail[:512], "ts": int(now)}
        out.append(
            ("publish", topics.events(self.machine_id), wire.encode("events", obj), False, 1)
        )

    def _show(self, pair: "tuple[str, str]", now: float) -> None:
        self.message = (pair[0], pair[1], now + self.config["message_s"])

    # -- after every event --

    def _report(self, now: float, out: "Out") -> None:
        if not self.connected:
            return
        current = (self.mode(), self.version, self.stock)
        if current == self.last_reported:
            return
        self.last_reported = current
        obj = {
            "desired_version": self.version,
            "mode": current[0],
            "stock": self.stock,
            "ts": int(now),
        }
        out.append(
            ("publish", topics.reported(self.machine_id), wire.encode("reported", obj), True, 1)
        )

    def _refresh_lcd(self, now: float, out: "Out") -> None:
        pair = screen.lines(self.view(now))
        if pair != self.last_lcd:
            self.last_lcd = pair
            out.append(("lcd", pair[0], pair[1]))


def _counts(job: "Msg") -> "list[Msg]":
    """The per-line counts of a job, as ``results`` and ``inflight`` carry them."""
    return [{"slot": line[_SLOT], "dispensed": line[_GOT]} for line in job["lines"]]


def _updating() -> "Any":
    """device/updating.py: imported on the first update event, so the heap of a
    machine that is not updating does not carry it."""
    from device import updating

    return updating


def _unrun(cmd: "Msg", status: str, now: float, error: str) -> "Msg":
    """The final result of a command that never ran (its lines all at 0)."""
    result = _result(cmd["cmd_id"], status, 0, now, error)
    if cmd.get("lines"):
        result["lines"] = [{"slot": line["slot"], "dispensed": 0} for line in cmd["lines"]]
    return result


def _result(
    cmd_id: str, status: str, dispensed: int, now: float, error: str | None = None
) -> "Msg":
    result: Msg = {"cmd_id": cmd_id, "status": status, "dispensed": dispensed, "ts": int(now)}
    if error is not None:
        result["error"] = error[:512]
    return result

"""A test rig around one Controller: plays the hardware and records what it does."""

from collections.abc import Callable
from typing import Any

from device.controller import Controller
from device.memory import MemoryStorage
from schema import messages, topics

T0 = 1_800_000_000
MID = "m1"


def desired(
    version: int,
    *,
    code: str | None = "123456",
    lock: bool = False,
    mode: str = "in_service",
    stock: int = 10,
    amount: int = 2500,
    expires_at: int = T0 + 3600,
    slots: list[dict[str, Any]] | None = None,
) -> bytes:
    obj: dict[str, Any] = {
        "version": version,
        "mode": mode,
        "display": None if lock or code is None else {"code": code, "expires_at": expires_at},
        "lock": {"session": "s1", "expires_at": expires_at} if lock else None,
        "price": {"amount": amount, "currency": "INR"},
        "stock": stock,
    }
    if slots is not None:
        obj["slots"] = slots
    return messages.encode("desired", obj)


def slot(
    slot_id: str, motor: int, name: str, amount: int = 2000, stock: int = 5, enabled: bool = True
) -> dict[str, Any]:
    price = {"amount": amount, "currency": "INR"}
    return {
        "id": slot_id,
        "motor": motor,
        "name": name,
        "price": price,
        "stock": stock,
        "enabled": enabled,
    }


def command(
    cmd_id: str,
    quantity: int = 1,
    *,
    expires_at: int = T0 + 60,
    lines: list[tuple[str, int, int]] | None = None,
) -> bytes:
    """A dispense command; ``lines`` as (slot, motor, quantity), ``quantity`` their total."""
    obj = {
        "cmd_id": cmd_id,
        "action": "dispense",
        "quantity": quantity,
        "order": "order-" + cmd_id,
        "issued_at": T0,
        "expires_at": expires_at,
    }
    if lines is not None:
        obj["lines"] = [{"slot": s, "motor": m, "quantity": q} for s, m, q in lines]
        obj["quantity"] = sum(q for _, _, q in lines)
    return messages.encode("cmd", obj)


class Rig:
    def __init__(
        self,
        config: dict[str, Any] | None = None,
        storage: MemoryStorage | None = None,
        now: float = T0,
        mid: str = MID,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.mid = mid
        self.config = config or {}
        self.storage = storage if storage is not None else MemoryStorage()
        self.now = now
        self.actions: list[tuple[Any, ...]] = []
        self.published: list[tuple[str, dict[str, Any] | bytes, bool, int]] = []
        self.motor: list[tuple[int, str]] = []  # (run, cmd_id)
        self.motors: list[int] = []  # the motor index of each run, in order
        self.pending: list[int] = []  # motor runs awaiting motor_done
        self.lcd: tuple[str, str] | None = None
        self.will: tuple[Any, ...] | None = None
        self.subscriptions: list[str] = []
        self.firmware: list[tuple[Any, ...]] = []  # update, fw_confirm, fw_reported actions
        self.rand = rand
        self.ctrl = Controller(mid, self.config, self.storage, rand)
        self.send(("boot",))

    # -- driving --

    def send(self, event: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        actions = self.ctrl.handle(event, self.now)
        self.actions.extend(actions)
        for action in actions:
            self._perform(action)
        return actions

    def _perform(self, action: tuple[Any, ...]) -> None:
        name = action[0]
        if name == "publish":
            _, topic, payload, retain, qos = action
            kind = topics.parse(topic)[0]
            self.published.append((topic, messages.decode(kind, payload), retain, qos))
        elif name == "motor":
            assert self.ctrl.job is not None
            self.motor.append((action[1], self.ctrl.job["cmd_id"]))
            self.motors.append(action[4])
            self.pending.append(action[1])
        elif name == "motor_stop":
            self.pending.clear()
        elif name == "lcd":
            assert len(action[1]) <= 16 and len(action[2]) <= 16
            self.lcd = (action[1], action[2])
        elif name == "will":
            self.will = action[1:]
        elif name == "subscribe":
            self.subscriptions.append(action[1])
        elif name in ("update", "fw_confirm", "fw_reported"):
            self.firmware.append(action)
        else:
            raise AssertionError(f"unknown action {action!r}")

    def connect(self) -> None:
        self.send(("connecting",))
        self.send(("connected",))

    def reboot(self) -> None:
        """Power cycle: a new controller on the same flash, then boot."""
        self.pending.clear()
        self.ctrl = Controller(self.mid, self.config, self.storage, self.rand)
        self.send(("boot",))

    def deliver(self, topic: str, payload: bytes) -> list[tuple[Any, ...]]:
        return self.send(("message", topic, payload))

    def set_desired(self, version: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        return self.deliver(topics.desired(self.mid), desired(version, **kwargs))

    def order(self, cmd_id: str, quantity: int = 1, **kwargs: Any) -> list[tuple[Any, ...]]:
        return self.deliver(topics.cmd(self.mid, cmd_id), command(cmd_id, quantity, **kwargs))

    def finish_motor(self) -> None:
        """Let every motor run complete, one after another."""
        while self.pending:
            self.send(("motor_done", self.pending.pop(0)))

    # -- reading --

    def results(self, cmd_id: str | None = None) -> list[dict[str, Any]]:
        out = []
        for topic, obj, _, _ in self.published:
            is_result = topics.parse(topic)[0] == "results" and isinstance(obj, dict)
            if is_result and (cmd_id is None or obj["cmd_id"] == cmd_id):  # type: ignore[index]
                out.append(obj)
        return out

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [
            obj
            for topic, obj, _, _ in self.published
            if topics.parse(topic)[0] == kind and isinstance(obj, dict)
        ]

    def runs_for(self, cmd_id: str) -> int:
        return sum(1 for _, c in self.motor if c == cmd_id)

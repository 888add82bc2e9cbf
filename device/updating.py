"""The controller's side of a firmware update (device/ota.py runs the update,
boot.py switches versions): the update command, its results, the trial boot.

Imported by :class:`device.controller.Controller` only when an update command or
event arrives, or when the machine boots on trial or after a rollback, so the heap
of a machine that is not updating carries none of it. Functions of the controller
(``ctrl``), with the controller's event and action conventions.

Portable: runs under CPython and MicroPython.
"""

from device.controller import DISPENSING, LOCKED, _result
from schema import topics, updates
from schema.errors import SchemaError

try:
    from micropython import const
except ImportError:  # CPython

    def const(value: int) -> int:
        return value


TYPE_CHECKING = const(0)  # mypy reads the block below; MicroPython compiles it away
if TYPE_CHECKING:
    from typing import Any

    from device.controller import Controller, Event, Out


def on_command(ctrl: "Controller", cmd_id: str, payload: bytes, now: float, out: "Out") -> None:
    """An update command on ``cmd/{cmd_id}``: start it (action ``update``) or refuse it."""
    if ctrl.update == cmd_id:
        return  # already under way (a re-sent retained command)
    try:
        cmd = updates.decode_update(payload)
    except SchemaError as exc:
        ctrl._final(_result(cmd_id, "rejected", 0, now, "invalid: " + str(exc)), now, out)
        return
    if cmd["cmd_id"] != cmd_id:
        ctrl._final(_result(cmd_id, "rejected", 0, now, "cmd_id_mismatch"), now, out)
        return
    if now > cmd["expires_at"]:
        ctrl._final(_result(cmd_id, "expired", 0, now, "expired"), now, out)
        return
    busy = ctrl.job is not None or ctrl.queue or ctrl.update is not None
    if busy or ctrl.mode() in (LOCKED, DISPENSING):
        ctrl._final(_result(cmd_id, "rejected", 0, now, "busy"), now, out)
        return
    ctrl.update = cmd_id
    out.append(("update", cmd))


def handle(ctrl: "Controller", event: "Event", now: float, out: "Out") -> None:
    """``("update_result", result)``, ``("fw_boot", state)``, ``("fw_confirmed", cmd_id)``."""
    if event[0] == "fw_boot":
        on_boot(ctrl, event[1] or {}, now, out)
        return
    if event[0] == "fw_confirmed":
        if event[1] != ctrl.trial:
            return
        ctrl.trial = ctrl.update = None
        result = _result(event[1], "succeeded", 0, now)
        ctrl.ledger.add(result)
        ctrl._send_final(result, out)
        return
    result = event[1]
    if result["status"] in ("accepted", "running"):
        if ctrl.connected:
            topic = topics.result(ctrl.machine_id, result["cmd_id"])
            out.append(("publish", topic, updates.encode_update_result(result), False, 1))
        return
    ctrl.update = None
    ctrl.ledger.add(result)
    ctrl._send_final(result, out)


def on_boot(ctrl: "Controller", state: "dict[str, Any]", now: float, out: "Out") -> None:
    """What boot.py left in ``/fw.json``: a trial to confirm, or a rollback to report."""
    if state.get("phase") == "trial" and state.get("cmd_id"):
        ctrl.trial = ctrl.update = state["cmd_id"]
    report = state.get("report")
    if report and report.get("cmd_id"):
        result = _result(report["cmd_id"], "failed", 0, now, "rolled_back")
        ctrl.ledger.add(result)
        if report["cmd_id"] not in ctrl.unsent:
            ctrl.unsent.append(report["cmd_id"])
        out.append(("fw_reported",))

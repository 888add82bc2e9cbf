"""Event scripts for the machine's controller, run alike on MicroPython and CPython.

Each scenario feeds a fresh controller (flash in a JSON file, as on the board) a
fixed list of events at fixed times and records every action it answers with.
``play(name, directory)`` returns them as JSON-ready lists (payload bytes as
text), so the two interpreters' transcripts can be compared byte for byte.

Portable: runs under MicroPython (only ``json`` and ``os``) and CPython.
"""

import json

from device.controller import Controller
from device.storage import JsonFileStorage
from schema import topics

MID = "VM-1"
T0 = 1767225600  # 2026-01-01, a clock NTP has set
CONFIG = {"motor_ms": 500, "settle_ms": 100, "telemetry_s": 60, "fw": "1.0.0", "motors": 8}
# Six slots on motors 0-7 (not in order: a slot's id is not its motor), one disabled.
SLOTS = [
    ("A1", 0, "Cola 330 ml", 2000, 7, True),
    ("A2", 1, "Lemon soda", 2000, 0, True),
    ("B1", 4, "Salted chips", 2000, 5, True),
    ("B2", 5, "Masala peanuts", 1500, 5, True),
    ("C1", 7, "Chocolate bar", 4500, 3, True),
    ("C2", 6, "Old stock", 1000, 2, False),
]


def _text(value: object) -> bytes:
    return json.dumps(value).encode("utf-8")


def desired(
    version: int,
    stock: int = 5,
    locked: bool = False,
    mode: str = "in_service",
    slots: bool = False,
) -> tuple:
    display = None
    lock = {"session": "s-" + str(version), "expires_at": T0 + 300}
    if not locked:
        display = {"code": "123456", "expires_at": T0 + 600}
        lock = None
    body = {
        "version": version,
        "mode": mode,
        "display": display,
        "lock": lock,
        "price": {"amount": 2500, "currency": "INR"},
        "stock": stock,
    }
    if slots:
        body["slots"] = [
            {
                "id": sid,
                "motor": motor,
                "name": name,
                "price": {"amount": amount, "currency": "INR"},
                "stock": units,
                "enabled": on,
            }
            for sid, motor, name, amount, units, on in SLOTS
        ]
    return ("message", topics.desired(MID), _text(body))


def command(cmd_id: str, quantity: int, expires_at: int = T0 + 120, lines: object = None) -> tuple:
    body = {
        "cmd_id": cmd_id,
        "action": "dispense",
        "quantity": quantity,
        "order": "order-" + cmd_id,
        "issued_at": T0,
        "expires_at": expires_at,
    }
    if lines:
        body["lines"] = [{"slot": s, "motor": m, "quantity": q} for s, m, q in lines]
    return ("message", topics.cmd(MID, cmd_id), _text(body))


ORDER = [("A1", 0, 2), ("B1", 4, 1), ("C1", 7, 1)]


def _start() -> list:
    """Power-up, connect, the retained server status and a first ``desired``."""
    online = _text({"state": "online", "ts": T0})
    return [
        (0, ("boot",)),
        (0, ("connecting",)),
        (0, ("connected",)),
        (0, ("message", topics.SERVER_STATUS, online)),
        (0, desired(1)),
        (1, ("tick", {"free_mem": 90000, "rssi": -61, "temp_c": 31.5})),
    ]


def _motor(t: int, runs: list) -> list:
    return [(t + i, ("motor_done", run)) for i, run in enumerate(runs)]


def _script(*parts: list) -> list:
    out = []
    for part in parts:
        out.extend(part)
    return out


REBOOT = "reboot"  # not an event: the next events go to a new controller on the same flash

SCRIPTS = {
    "normal_vend": _script(
        _start(),
        [(2, desired(2, locked=True)), (3, command("c1", 2))],
        _motor(4, [1, 2]),
        [(6, desired(3, stock=3)), (12, ("tick",))],
    ),
    "jam_after_one_unit": _script(
        _start(),
        [(2, command("c1", 3)), (3, ("motor_done", 1)), (4, ("jam",)), (5, ("motor_done", 2))],
        [(6, command("c2", 1)), (7, ("door", True)), (8, ("door", False)), (9, command("c3", 1))],
        _motor(10, [3]),
    ),
    "reboot_mid_run": _script(
        _start(),
        [(2, command("c1", 3)), (3, ("motor_done", 1)), (4, REBOOT), (5, ("boot",))],
        [(5, ("connecting",)), (6, ("connected",)), (7, command("c1", 3)), (8, ("motor_done", 2))],
    ),
    "duplicates_and_resends": _script(
        _start(),
        [
            (2, command("c1", 1)),
            (2, command("c1", 1)),
            (3, ("motor_done", 1)),
            (4, command("c1", 1)),
        ],
        [(5, ("disconnected",)), (6, ("connecting",)), (7, ("connected",)), (8, command("c1", 1))],
        [(9, ("message", topics.cmd(MID, "c1"), b""))],
    ),
    "expired_command": _script(
        _start(),
        [(2, command("c1", 1, expires_at=T0 + 1)), (3, command("c2", 1)), (3, command("c3", 1))],
        [(4, ("motor_done", 1)), (200, ("motor_done", 2))],
    ),
    "desired_out_of_order": _script(
        _start(),
        [(2, desired(5, stock=9)), (3, desired(4, stock=1)), (4, desired(5, stock=2))],
        [(5, desired(6, stock=0)), (6, desired(7, mode="out_of_service")), (7, command("c1", 1))],
    ),
    "locked_display": _script(
        _start(),
        [(2, desired(2, locked=True)), (3, ("tick",)), (4, desired(3))],
        [(700, ("tick", {"temp_c": 31.5, "rssi": -61})), (800, ("tick", {"temp_c": -0.25}))],
    ),
    "lines_jam_then_reboot": _script(
        _start(),
        [(2, desired(2, stock=22, slots=True)), (3, ("tick",)), (6, ("tick",))],
        # A1 gives two, B1 jams, C1 still gives its one: failed, with the lines.
        [(7, command("c1", 4, lines=ORDER))],
        _motor(8, [1, 2]),
        [(10, ("jam",)), (11, ("motor_done", 3)), (12, ("motor_done", 4))],
        # B1's motor stays jammed: skipped; A1 gives one, then the power goes.
        [(20, command("c2", 3, lines=[("B1", 4, 1), ("A1", 0, 2)])), (21, ("motor_done", 5))],
        [(22, REBOOT), (23, ("boot",)), (23, ("connecting",)), (24, ("connected",))],
        [(25, command("c2", 3, lines=[("B1", 4, 1), ("A1", 0, 2)])), (26, ("tick",))],
    ),
    "door_open_close": _script(
        _start(),
        [(2, ("door", True)), (3, command("c1", 1)), (4, ("door", True)), (5, ("door", False))],
        [(6, command("c2", 1)), (7, ("motor_done", 1))],
    ),
}
NAMES = tuple(sorted(SCRIPTS))


def _record(t: int, action: tuple) -> list:
    out = [t]
    for item in action:
        if isinstance(item, bytes):
            item = item.decode("utf-8")
        out.append(item)
    return out


def play(name: str, directory: str) -> list:
    """Run scenario ``name`` with flash in ``directory``; ``[[t, action...], ...]``."""
    path = directory + "/" + name + ".json"
    ctrl = Controller(MID, CONFIG, JsonFileStorage(path, ("ledger", "slots")))
    transcript = []
    for step in SCRIPTS[name]:
        t, event = step
        if event == REBOOT:
            ctrl = Controller(MID, CONFIG, JsonFileStorage(path, ("ledger", "slots")))
            transcript.append(_record(t, (REBOOT,)))
            continue
        for action in ctrl.handle(event, T0 + t):
            transcript.append(_record(t, action))
    return transcript


def play_all(directory: str) -> dict:
    out = {}
    for name in NAMES:
        out[name] = play(name, directory)
    return out

"""The machine's heap, measured on MicroPython with ``gc.mem_alloc()``.

Driven one top-level call at a time (see run.mjs: garbage is freed between two
calls): ``begin()``, ``load("hal")``, ``mark("hal")``, ``load("main")``,
``start(directory)``, then ``step()`` once per entry of :data:`STEPS`, then
``report()``. Figures are bytes in use on top of the interpreter with this
module loaded:

* ``hal``: the hardware layer alone (with stand-ins of a few hundred bytes for
  ``machine``, ``network``, ``ntptime`` and ``umqtt.simple``, which the
  WebAssembly port does not have);
* ``import``: after importing everything the firmware imports (hal.py and the
  loop, main.py, with all they import);
* ``peak``: the most in use during any one event of a vend on a 60-slot machine
  (its ``desired`` has 60 slots with 40-character names), counting every
  allocation of that event as live (an upper bound); the vend is an order of three
  lines whose middle one jams, so the machine goes on with the third;
* ``resident``: what stays in use after that vend;
* ``peak_full_ledger``, ``resident_full_ledger``: the same for later vends, once
  the ledger holds its 32 results (a machine's steady state);
* ``peak_reboot``, ``resident_reboot``: an order cut by a reboot after its first
  unit, the machine started again on the same flash, the result ``unknown`` with
  the per-line counts kept in flash, and the server's retained command answered
  from the ledger.

Nothing of the firmware is imported before ``load()``. MicroPython only.
"""

import gc

MID = "VM-1"
T0 = 1767225600
ROOT = "smartvend/v1/machines/" + MID + "/"
CONFIG = {"motor_ms": 500, "settle_ms": 100, "fw": "1.0.0", "motors": 60}
LEDGER = 32


def _cmd_id(n: int) -> str:
    return "cmd_" + ("0000000000000000000" + str(n))[-20:]  # as long as the server's


LATER = str(T0 + 10**6)


def _command(cmd_id: str) -> tuple:
    """Three lines of one unit each, on three slots of the 60."""
    lines = []
    for slot, motor in (("A1", 0), ("C4", 23), ("F9", 59)):
        lines.append('{"slot":"' + slot + '","motor":' + str(motor) + ',"quantity":1}')
    body = (
        '{"cmd_id":"'
        + cmd_id
        + '","action":"dispense","quantity":3,"order":"ord_'
        + cmd_id[4:]
        + '","issued_at":'
        + str(T0)
        + ',"expires_at":'
        + LATER
        + ',"lines":['
        + ",".join(lines)
        + "]}"
    )
    return ("message", ROOT + "cmd/" + cmd_id, body.encode())


def _slots() -> str:
    """60 slots (A0..F9, motors 0..59), each name 40 characters long."""
    out = []
    for i in range(60):
        name = ("Product " + str(i) + " " + "x" * 40)[:40]
        out.append(
            '{"id":"'
            + "ABCDEF"[i // 10]
            + str(i % 10)
            + '","motor":'
            + str(i)
            + ',"name":"'
            + name
            + '","price":{"amount":'
            + str(1500 + 500 * (i % 4))
            + ',"currency":"INR"},"stock":'
            + str(i % 9)
            + ',"enabled":true}'
        )
    return ",".join(out)


DESIRED = (
    '{"version":1,"mode":"in_service","display":{"code":"123456","expires_at":' + LATER + "},"
    '"lock":null,"price":{"amount":1500,"currency":"INR"},"stock":1000,"slots":[' + _slots() + "]}"
)
START = [
    ("boot",),
    ("connecting",),
    ("connected",),
    ("message", "smartvend/v1/server/status", b'{"state":"online","ts":1767225600}'),
    ("message", ROOT + "desired", DESIRED.encode()),
]


def _vend(n: int) -> list:
    """The first line's unit, the second line jams, the third line's unit."""
    return [
        _command(_cmd_id(n)),
        ("motor_done",),
        ("jam",),
        ("motor_done",),
        ("tick", {"rssi": -61}),
    ]


REBOOT = "reboot"  # a new controller on the same flash
STEPS = START + _vend(0)
STEPS.append("resident")
for _n in range(1, LEDGER + 1):
    STEPS.extend(_vend(_n))
STEPS.append("resident_full_ledger")
STEPS.extend([_command(_cmd_id(99)), ("motor_done",), REBOOT])
STEPS.extend(START[:4])  # boot, connect, the server's status: no new desired
STEPS.append(_command(_cmd_id(99)))
STEPS.append(("tick", {"rssi": -61}))
STEPS.append("resident_reboot")
del _n

_state = {"base": 0, "at": 0, "peak": 0, "ctrl": None, "figures": {}, "dir": ""}


def _used() -> int:
    return gc.mem_alloc() - _state["base"]


def begin() -> None:
    _state["base"] = gc.mem_alloc()


def load(name: str) -> None:
    __import__(name)


def mark(name: str) -> None:
    _state["figures"][name] = _used()


def _controller() -> object:
    from device.controller import Controller
    from device.storage import JsonFileStorage

    # As main.py builds it: the ledger stays in flash.
    return Controller(
        MID, CONFIG, JsonFileStorage(_state["dir"] + "/heap.json", ("ledger", "slots"))
    )


def start(directory: str) -> None:
    _state["figures"]["import"] = _used()
    _state["dir"] = directory
    _state["ctrl"] = _controller()


def step() -> None:
    """Handle the next event (or take the next mark) and note the heap in use."""
    at = _state["at"]
    _state["at"] = at + 1
    event = STEPS[at]
    figures = _state["figures"]
    if event == REBOOT:
        _state["ctrl"] = None  # the old one's RAM is gone
        _state["ctrl"] = _controller()
        return
    if isinstance(event, str):
        figures[event] = _used()
        figures["peak" + event[8:]] = _state["peak"]  # resident_x -> peak_x
        _state["peak"] = 0
        return
    ctrl = _state["ctrl"]
    if event[0] == "motor_done":
        event = ("motor_done", ctrl.runs)
    for action in ctrl.handle(event, T0 + at):
        for item in action:  # what the loop does with an action: read it
            if isinstance(item, bytes):
                len(item)
    used = _used()
    if used > _state["peak"]:
        _state["peak"] = used


def report() -> dict:
    return _state["figures"]

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
* ``peak``: the most in use during any one event of a two-unit vend, counting
  every allocation of that event as live (an upper bound);
* ``resident``: what stays in use after that vend;
* ``peak_full_ledger``, ``resident_full_ledger``: the same for later vends, once
  the ledger holds its 32 results (a machine's steady state).

Nothing of the firmware is imported before ``load()``. MicroPython only.
"""

import gc

MID = "VM-1"
T0 = 1767225600
ROOT = "smartvend/v1/machines/" + MID + "/"
CONFIG = {"motor_ms": 500, "settle_ms": 100, "fw": "1.0.0"}
LEDGER = 32


def _cmd_id(n: int) -> str:
    return "cmd_" + ("0000000000000000000" + str(n))[-20:]  # as long as the server's


LATER = str(T0 + 10**6)


def _command(cmd_id: str) -> tuple:
    body = (
        '{"cmd_id":"'
        + cmd_id
        + '","action":"dispense","quantity":2,"order":"ord_'
        + cmd_id[4:]
        + '","issued_at":'
        + str(T0)
        + ',"expires_at":'
        + LATER
        + "}"
    )
    return ("message", ROOT + "cmd/" + cmd_id, body.encode())


DESIRED = (
    '{"version":1,"mode":"in_service","display":{"code":"123456","expires_at":' + LATER + "},"
    '"lock":null,"price":{"amount":2500,"currency":"INR"},"stock":1000}'
)
START = [
    ("boot",),
    ("connecting",),
    ("connected",),
    ("message", "smartvend/v1/server/status", b'{"state":"online","ts":1767225600}'),
    ("message", ROOT + "desired", DESIRED.encode()),
]


def _vend(n: int) -> list:
    return [_command(_cmd_id(n)), ("motor_done",), ("motor_done",), ("tick", {"rssi": -61})]


STEPS = START + _vend(0)
STEPS.append("resident")
for _n in range(1, LEDGER + 1):
    STEPS.extend(_vend(_n))
STEPS.append("resident_full_ledger")
del _n

_state = {"base": 0, "at": 0, "peak": 0, "ctrl": None, "figures": {}}


def _used() -> int:
    return gc.mem_alloc() - _state["base"]


def begin() -> None:
    _state["base"] = gc.mem_alloc()


def load(name: str) -> None:
    __import__(name)


def mark(name: str) -> None:
    _state["figures"][name] = _used()


def start(directory: str) -> None:
    from device.controller import Controller
    from device.storage import JsonFileStorage

    _state["figures"]["import"] = _used()
    _state["ctrl"] = Controller(MID, CONFIG, JsonFileStorage(directory + "/heap.json"))


def step() -> None:
    """Handle the next event (or take the next mark) and note the heap in use."""
    at = _state["at"]
    _state["at"] = at + 1
    event = STEPS[at]
    figures = _state["figures"]
    if isinstance(event, str):
        figures[event] = _used()
        figures["peak_full_ledger" if "peak" in figures else "peak"] = _state["peak"]
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

"""The machine's code on MicroPython itself: same actions as on CPython, within its heap."""

import importlib
import json
import sys
from pathlib import Path

import pytest

from tests.device.board import FIRMWARE
from tests.micropython import heap, interpreter, scenarios

# Bytes on top of the bare interpreter that a plain ESP32 can spare for
# SmartVend after Wi-Fi, a TLS session and the MQTT client (docs/firmware.md).
# Firmware updates fit in it: the update code (device/ota.py, device/updating.py,
# schema/updates.py, download.py, Ed25519) is imported only when an update starts.
RESIDENT_BUDGET = 48 * 1024


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("board")
    interpreter.board_image(dest)
    return dest


@pytest.fixture(scope="module")
def on_micropython(image: Path) -> dict[str, list[list[object]]]:
    code = "import json, scenarios\nprint(json.dumps(scenarios.play_all('/flash')))\n"
    return json.loads(interpreter.run(image, code))  # type: ignore[no-any-return]


def test_board_files_are_mpy_of_the_version_the_interpreter_loads(image: Path) -> None:
    code = "import sys\nprint(sys.implementation._mpy & 0xFF)\n"
    loads = int(interpreter.run(image, code))
    files = sorted(image.rglob("*.mpy"))
    names = {p.relative_to(image).as_posix() for p in files}
    assert names >= {
        "main.mpy",
        "device/controller.mpy",
        "schema/wire.mpy",
    }
    assert {interpreter.mpy_header(p) for p in files} == {(loads, 0)}
    assert not list(image.rglob("*.py"))  # nothing is compiled from source on the "board"
    # The server's half of the contract stays off the board.
    assert not {"schema/messages.mpy", "schema/jsonschema.mpy"} & names


@pytest.mark.parametrize("name", scenarios.NAMES)
def test_same_actions_on_micropython_and_cpython(
    name: str, on_micropython: dict[str, list[list[object]]], tmp_path: Path
) -> None:
    on_cpython = json.loads(json.dumps(scenarios.play(name, str(tmp_path))))
    assert on_micropython[name] == on_cpython
    assert any(step[1] == "publish" for step in on_cpython)
    assert any(step[1] == "lcd" for step in on_cpython)


def test_firmware_loop_same_on_micropython_and_cpython(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main.py itself, on a scripted board: connect, a two-unit vend, a re-sent command."""
    code = "import json, loop\nprint(json.dumps(loop.play('/flash')))\n"
    on_micropython = json.loads(interpreter.run(image, code))
    monkeypatch.syspath_prepend(str(FIRMWARE))  # main.py imports as ``main`` on the board
    monkeypatch.delitem(sys.modules, "main", raising=False)
    loop = importlib.import_module("tests.micropython.loop")
    on_cpython = json.loads(json.dumps(loop.play(str(tmp_path))))
    assert on_micropython == on_cpython
    motor = [(row[0], row[1]) for row in on_cpython if row[1].startswith("motor")]
    assert motor[:4] == [
        (500, "motor_on"),
        (1300, "motor_off"),
        (1500, "motor_on"),
        (2300, "motor_off"),
    ]
    results = [
        json.loads(row[3]) for row in on_cpython if row[1] == "publish" and "/results/" in row[2]
    ]
    # The motor starts once the event's publishes are out (a slow PUBACK for the
    # ``reported`` that follows it must not lengthen the run).
    kinds = [row[1] for row in on_cpython if row[0] == 500]
    assert kinds == ["publish", "publish", "lcd", "motor_on"]
    assert [(r["status"], r["dispensed"]) for r in results] == [
        ("accepted", 0),
        ("running", 1),
        ("succeeded", 2),
        ("succeeded", 2),  # the re-sent command, from the ledger: no third motor run
    ]


def test_firmware_loop_with_several_motors(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main.py with a three-motor config: each line of an order turns its own motor."""
    code = "import json, loop\nprint(json.dumps(loop.play('/flash', True)))\n"
    on_micropython = json.loads(interpreter.run(image, code))
    monkeypatch.syspath_prepend(str(FIRMWARE))
    monkeypatch.delitem(sys.modules, "main", raising=False)
    loop = importlib.import_module("tests.micropython.loop")
    on_cpython = json.loads(json.dumps(loop.play(str(tmp_path), True)))
    assert on_micropython == on_cpython
    motor = [(row[1], row[2]) for row in on_cpython if row[1].startswith("motor")]
    assert motor[:4] == [("motor_on", 0), ("motor_off", 0), ("motor_on", 2), ("motor_off", 2)]
    assert motor[4:] == [("motor_off", 0), ("motor_off", 1), ("motor_off", 2)]  # all, at exit
    results = [
        json.loads(row[3]) for row in on_cpython if row[1] == "publish" and "/results/" in row[2]
    ]
    assert [(r["status"], r.get("lines")) for r in results][-2:] == [
        ("succeeded", [{"slot": "A1", "dispensed": 1}, {"slot": "B1", "dispensed": 1}]),
        ("succeeded", [{"slot": "A1", "dispensed": 1}, {"slot": "B1", "dispensed": 1}]),
    ]
    lcd = [(row[2], row[3]) for row in on_cpython if row[1] == "lcd"]
    assert ("Code 123456", "A1 Cola   \u20b920.00") in lcd and ("Dispensing 2/2", "Slot B1") in lcd


# What each script must show: (cmd_id, status, dispensed) of every result, and motor runs.
RESULTS = {
    "normal_vend": ([("c1", "accepted", 0), ("c1", "running", 1), ("c1", "succeeded", 2)], 2),
    "jam_after_one_unit": (
        [
            *[("c1", "accepted", 0), ("c1", "running", 1), ("c1", "failed", 1)],  # jammed
            ("c2", "rejected", 0),  # still in error
            *[("c3", "accepted", 0), ("c3", "succeeded", 1)],  # the door was opened and closed
        ],
        3,
    ),
    "reboot_mid_run": (
        [("c1", "accepted", 0), ("c1", "running", 1), ("c1", "unknown", 1), ("c1", "unknown", 1)],
        2,  # both before the reboot; the re-sent command never runs again
    ),
    "duplicates_and_resends": (
        [("c1", "accepted", 0), ("c1", "running", 0), ("c1", "succeeded", 1)]
        + [("c1", "succeeded", 1)] * 2,  # answered from the ledger, before and after a reconnect
        1,
    ),
    "expired_command": (
        [
            *[("c1", "expired", 0), ("c2", "accepted", 0), ("c2", "succeeded", 1)],
            *[("c3", "accepted", 0), ("c3", "succeeded", 1)],  # queued, in time when started
        ],
        2,
    ),
    "desired_out_of_order": ([("c1", "rejected", 0)], 0),  # out of service at version 7
    "locked_display": ([], 0),
    "door_open_close": ([("c1", "rejected", 0), ("c2", "accepted", 0), ("c2", "succeeded", 1)], 1),
    "lines_jam_then_reboot": (
        [
            *[("c1", "accepted", 0), ("c1", "running", 1), ("c1", "running", 2)],
            *[("c1", "running", 3), ("c1", "failed", 3)],  # B1 jammed, C1 went on
            *[("c2", "accepted", 0), ("c2", "running", 1)],
            *[("c2", "unknown", 1), ("c2", "unknown", 1)],  # after the reboot; re-sent
        ],
        6,  # the reboot came during c2's sixth run (A1's second unit): never run again
    ),
}


@pytest.mark.parametrize("name", scenarios.NAMES)
def test_scenarios_follow_the_device_rules(name: str, tmp_path: Path) -> None:
    transcript = scenarios.play(name, str(tmp_path))
    results = [
        json.loads(str(step[3]))
        for step in transcript
        if step[1] == "publish" and "/results/" in str(step[2])
    ]
    expected, runs = RESULTS[name]
    assert [(r["cmd_id"], r["status"], r["dispensed"]) for r in results] == expected
    assert sum(step[1] == "motor" for step in transcript) == runs
    lcd = [(step[2], step[3]) for step in transcript if step[1] == "lcd"]
    reported = [
        json.loads(str(step[3]))
        for step in transcript
        if step[1] == "publish" and str(step[2]).endswith("/reported")
    ]
    telemetry = [
        str(step[3])
        for step in transcript
        if step[1] == "publish" and str(step[2]).endswith("/telemetry")
    ]
    if name == "locked_display":  # jittered: none in the first seconds, then one per tick here
        assert telemetry == [
            f'{{"ts":{scenarios.T0 + 700},"rssi":-61,"temp_c":31.5,"uptime_s":700}}',
            f'{{"ts":{scenarios.T0 + 800},"temp_c":-0.25,"uptime_s":800}}',
        ]
        assert lcd[-3:] == [
            ("In use", "Pay on phone"),  # no code while locked
            ("Code 123456", "Rs 25.00"),
            ("Please wait", "Rs 25.00"),  # the code expired
        ]
    if name == "desired_out_of_order":  # versions 4 and 5 (again) are ignored
        assert [(r["desired_version"], r["stock"]) for r in reported][2:] == [
            (5, 9),
            (6, 0),
            (7, 5),
        ]
    if name == "reboot_mid_run":
        assert results[2]["error"] == "rebooted"
    if name == "lines_jam_then_reboot":
        lines = [[(c["slot"], c["dispensed"]) for c in r.get("lines", [])] for r in results]
        assert lines[4] == [("A1", 2), ("B1", 0), ("C1", 1)]
        assert lines[6] == [("B1", 0), ("A1", 1)]
        assert lines[7] == lines[8] == [("B1", 0), ("A1", 1)]  # kept in flash over the reboot
        motors = [step[5] for step in transcript if step[1] == "motor"]
        assert motors == [0, 0, 4, 7, 0, 0]  # each line on its motor; B1's jammed one skipped
        assert ("Code 123456", "A1 Cola 3 \u20b920.00") in lcd
        assert ("Code 123456", "A2 Lemo sold out") in lcd
        assert ("Dispensing 3/4", "Slot B1") in lcd
        assert not any("Old stock" in line for pair in lcd for line in pair)  # disabled


def test_heap_budget(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chunks = ["import json, heap", "heap.begin()", "heap.load('hal')", "heap.mark('hal')"]
    chunks += ["heap.load('main')", "heap.start('/flash')"]
    chunks += ["heap.step()"] * len(heap.STEPS)
    chunks.append("print(json.dumps(heap.report()))")
    figures = json.loads(interpreter.run(image, *chunks))
    with capsys.disabled():
        print(
            "\nMicroPython heap (bytes over the bare interpreter, modules as .mpy): "
            + ", ".join(f"{key} {value:,}" for key, value in figures.items())
        )
    assert 0 < figures["hal"] < figures["import"] <= figures["resident"]
    assert figures["resident"] < figures["peak"]
    # A 60-slot machine after an order whose middle line jammed, with a full ledger
    # of such orders, and after a reboot in the middle of one.
    for key in ("resident", "resident_full_ledger", "resident_reboot"):
        assert figures[key] <= RESIDENT_BUDGET, figures

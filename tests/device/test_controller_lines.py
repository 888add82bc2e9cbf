"""Several slots: commands with lines, per-line counts, slots on the idle screen."""

from typing import Any

from device.memory import MemoryStorage
from tests.device.rig import Rig, slot

SNACKS = [
    slot("A1", 0, "Cola 330 ml", 2000, 7),
    slot("B3", 4, "Salted chips", 2000, 5),
    slot("C2", 7, "Chocolate bar", 4500, 0),
    slot("D1", 9, "Hidden", 1000, 5, enabled=False),
]
ORDER = [("A1", 0, 2), ("B3", 4, 1), ("C2", 7, 1)]


def snack_rig(**config: Any) -> Rig:
    rig = Rig({"motors": 10, **config})
    rig.connect()
    rig.set_desired(1, stock=17, slots=SNACKS)
    return rig


def finals(rig: Rig, cmd_id: str) -> list[dict[str, Any]]:
    return [r for r in rig.results(cmd_id) if r["status"] not in ("accepted", "running")]


def counts(result: dict[str, Any]) -> list[tuple[str, int]]:
    return [(line["slot"], line["dispensed"]) for line in result["lines"]]


def test_lines_run_in_order_each_on_its_motor() -> None:
    rig = snack_rig()
    rig.order("c1", lines=ORDER)
    assert rig.lcd == ("Dispensing 1/4", "Slot A1")
    rig.finish_motor()
    assert rig.motors == [0, 0, 4, 7]
    results = rig.results("c1")
    assert [r["status"] for r in results] == [
        "accepted",
        "running",
        "running",
        "running",
        "succeeded",
    ]
    assert "lines" not in results[0]
    assert counts(results[1]) == [("A1", 1), ("B3", 0), ("C2", 0)]
    assert counts(results[3]) == [("A1", 2), ("B3", 1), ("C2", 0)]
    assert results[-1]["dispensed"] == 4 and counts(results[-1]) == [
        ("A1", 2),
        ("B3", 1),
        ("C2", 1),
    ]
    assert rig.ctrl.stock == 13


def test_a_jam_ends_its_line_and_the_machine_goes_on() -> None:
    rig = snack_rig()
    rig.order("c1", lines=ORDER)
    rig.send(("motor_done", rig.pending.pop(0)))
    rig.send(("motor_done", rig.pending.pop(0)))
    assert rig.lcd == ("Dispensing 3/4", "Slot B3")
    actions = rig.send(("jam",))
    assert [a[0] for a in actions if a[0] in ("motor", "motor_stop")] == ["motor_stop", "motor"]
    jam = rig.of_kind("events")[-1]
    assert (jam["type"], jam["detail"]) == ("jam", "slot B3 motor 4 stalled")
    rig.finish_motor()
    assert rig.motors == [0, 0, 4, 7]
    final = finals(rig, "c1")[0]
    assert (final["status"], final["dispensed"], final["error"]) == ("failed", 3, "jam")
    assert counts(final) == [("A1", 2), ("B3", 0), ("C2", 1)]
    # One jammed spiral does not stop the machine: the other slots still sell.
    assert rig.ctrl.mode() == "idle" and rig.storage.get("jammed") == [4]
    rig.order("c2", lines=[("B3", 4, 1), ("A1", 0, 1)])
    rig.finish_motor()
    assert rig.motors[4:] == [0]  # the jammed motor is skipped until serviced
    assert counts(finals(rig, "c2")[0]) == [("B3", 0), ("A1", 1)]
    rig.send(("door", True))
    rig.send(("door", False))
    assert rig.storage.get("jammed") is None
    rig.order("c3", lines=[("B3", 4, 1)])
    rig.finish_motor()
    assert rig.motors[5:] == [4] and finals(rig, "c3")[0]["status"] == "succeeded"


def test_a_line_that_drops_nothing_ends_and_the_next_runs() -> None:
    rig = snack_rig(drop_sensor=True)
    rig.order("c1", lines=ORDER)
    rig.send(("drop",))
    rig.send(("motor_done", rig.pending.pop(0)))
    rig.send(("motor_done", rig.pending.pop(0)))  # A1's second unit never fell
    error = rig.of_kind("events")[-1]
    assert (error["code"], error["detail"]) == ("not_dropped", "slot A1 unit 2")
    assert rig.lcd == ("Dispensing 3/4", "Slot B3")
    for _ in range(2):
        rig.send(("drop",))
        rig.send(("motor_done", rig.pending.pop(0)))
    final = finals(rig, "c1")[0]
    assert (final["status"], final["error"]) == ("failed", "not_dropped")
    assert counts(final) == [("A1", 1), ("B3", 1), ("C2", 1)] and final["dispensed"] == 3
    assert rig.motors == [0, 0, 4, 7]


def test_a_reboot_mid_order_reports_unknown_with_the_counts_kept_in_flash() -> None:
    storage = MemoryStorage()
    rig = Rig({"motors": 10}, storage=storage)
    rig.connect()
    rig.set_desired(1, stock=17, slots=SNACKS)
    rig.order("c1", lines=ORDER)
    for _ in range(3):
        rig.send(("motor_done", rig.pending.pop(0)))
    assert storage.get("inflight")["lines"] == [
        {"slot": "A1", "dispensed": 2},
        {"slot": "B3", "dispensed": 1},
        {"slot": "C2", "dispensed": 0},
    ]
    rig.reboot()
    rig.connect()
    unknown = rig.results("c1")[-1]
    assert (unknown["status"], unknown["dispensed"], unknown["error"]) == ("unknown", 3, "rebooted")
    assert counts(unknown) == [("A1", 2), ("B3", 1), ("C2", 0)]
    runs = len(rig.motors)
    rig.order("c1", lines=ORDER)  # the server's retained command, again
    assert len(rig.motors) == runs
    assert rig.results("c1")[-1] == unknown


def test_a_repeated_command_answers_its_stored_lines() -> None:
    rig = snack_rig()
    rig.order("c1", lines=ORDER)
    rig.send(("motor_done", rig.pending.pop(0)))
    rig.order("c1", lines=ORDER)  # while running: a running result with its lines
    assert counts(rig.results("c1")[-1]) == [("A1", 1), ("B3", 0), ("C2", 0)]
    rig.finish_motor()
    rig.order("c1", lines=ORDER)
    assert rig.results("c1")[-1] == finals(rig, "c1")[0]
    assert len(rig.motors) == 4


def test_bad_lines_are_rejected_before_any_motor_runs() -> None:
    rig = snack_rig()
    rig.order("c1", lines=[("A1", 0, 1), ("Z9", 12, 1)])  # motor 12 is not wired
    rig.deliver(
        "smartvend/v1/machines/m1/cmd/c3",
        b'{"cmd_id":"c3","action":"dispense","quantity":3,"order":"o","issued_at":1800000000,'
        b'"expires_at":1800000060,"lines":[{"slot":"A1","motor":0,"quantity":1}]}',
    )
    assert [(r["cmd_id"], r["status"], r.get("error")) for r in rig.results()] == [
        ("c1", "rejected", "unknown_motor"),
        ("c3", "rejected", "invalid_lines"),  # quantity is not the lines' total
    ]
    assert counts(rig.results()[0]) == [("A1", 0), ("Z9", 0)]  # a final status: with its lines
    assert rig.motors == []


def test_a_command_without_lines_is_one_line_on_motor_0_and_reports_none() -> None:
    rig = snack_rig()
    rig.order("c1", 2)
    rig.finish_motor()
    assert rig.motors == [0, 0]
    assert all("lines" not in r for r in rig.results("c1"))
    assert finals(rig, "c1")[0]["status"] == "succeeded"


def test_idle_screen_cycles_through_the_enabled_slots() -> None:
    rig = snack_rig()
    seen = []
    for _ in range(4):
        rig.now += 3
        rig.send(("tick",))
        seen.append(rig.lcd)
    assert rig.lcd is not None and rig.lcd[0] == "Code 123456"
    assert sorted({line for _, line in seen}) == [
        "A1 Cola 3 \u20b920.00",
        "B3 Salted \u20b920.00",
        "C2 Choc sold out",
    ]
    assert "slots" not in rig.storage.get("desired")
    # Kept in flash: after a reboot the same version is not applied again, yet the
    # screen still knows its slots.
    rig.reboot()
    rig.connect()
    rig.set_desired(1, stock=17, slots=SNACKS)
    rig.send(("tick",))
    assert rig.lcd is not None and rig.lcd[1] in {line for _, line in seen}


def test_one_slot_keeps_the_v1_screen() -> None:
    rig = Rig()
    rig.connect()
    rig.set_desired(1, stock=5, amount=1500, slots=[slot("1", 0, "Water", 1500, 5)])
    assert rig.lcd == ("Code 123456", "Rs 15.00")
    rig.set_desired(2, stock=5, amount=1500)
    assert rig.storage.get("slots") is None

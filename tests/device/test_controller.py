"""The controller's device rules, one scenario at a time."""

import itertools

from device.controller import Controller
from device.ledger import SIZE
from schema import messages, topics
from tests.device.rig import MID, T0, Rig, command


def ready_rig(**config: object) -> Rig:
    rig = Rig(dict(config))
    rig.connect()
    rig.set_desired(1, stock=10)
    return rig


def test_connect_announces_presence_with_will_of_same_boot() -> None:
    rig = Rig()
    rig.connect()
    assert rig.will is not None
    topic, payload, retain, qos = rig.will
    assert topic == topics.status(MID) and retain and qos == 1
    assert messages.decode("status", payload) == {"state": "lost", "boot": 1}
    status = rig.of_kind("status")[0]
    assert status["state"] == "online" and status["boot"] == 1 and status["ts"] == T0
    assert rig.published[0][2] is True  # retained
    assert set(rig.subscriptions) == {
        topics.desired(MID),
        topics.machine_filter("cmd", MID),
        topics.SERVER_STATUS,
    }
    rig.send(("disconnected",))
    rig.connect()
    assert [s["boot"] for s in rig.of_kind("status")] == [1, 2]
    rig.reboot()
    rig.connect()
    assert rig.of_kind("status")[-1]["boot"] == 3


def test_vend_reports_accepted_before_motor_then_succeeded() -> None:
    rig = ready_rig(motor_ms=300)
    actions = rig.order("c1", 2)
    kinds = [a[0] for a in actions]
    first_motor = kinds.index("motor")
    accepted = [a for a in actions[:first_motor] if a[0] == "publish" and "/results/" in a[1]]
    assert len(accepted) == 1
    assert messages.decode("results", accepted[0][2])["status"] == "accepted"
    assert actions[first_motor][2] == 300
    assert rig.lcd == ("Dispensing 1/2", "Please wait")
    rig.send(("motor_done", rig.pending.pop(0)))
    assert rig.lcd == ("Dispensing 2/2", "Please wait")
    rig.finish_motor()
    assert [(r["status"], r["dispensed"]) for r in rig.results("c1")] == [
        ("accepted", 0),
        ("running", 1),  # progress after every unit but the last
        ("succeeded", 2),
    ]
    assert rig.runs_for("c1") == 2
    assert rig.ctrl.stock == 8 and rig.storage.get("stock") == 8
    assert rig.of_kind("reported")[-1] == {
        "desired_version": 1,
        "mode": "idle",
        "stock": 8,
        "ts": T0,
    }
    assert rig.lcd == ("Thank you!", "Enjoy!")
    rig.now += 10
    rig.send(("tick",))
    assert rig.lcd == ("Code 123456", "Rs 25.00")


def test_repeated_command_is_answered_from_ledger_without_motor() -> None:
    rig = ready_rig()
    rig.order("c1", 1)
    rig.finish_motor()
    runs = len(rig.motor)
    rig.order("c1", 1)
    assert len(rig.motor) == runs
    assert rig.results("c1")[-1]["status"] == "succeeded"
    # Even after a reboot the ledger in flash answers.
    rig.reboot()
    rig.connect()
    rig.order("c1", 1)
    assert len(rig.motor) == runs
    assert rig.results("c1")[-1] == rig.results("c1")[1]


def test_repeat_while_running_reports_progress_only() -> None:
    rig = ready_rig()
    rig.order("c1", 2)
    rig.send(("motor_done", rig.pending.pop(0)))
    rig.order("c1", 2)
    assert rig.results("c1")[-1]["status"] == "running"
    assert rig.results("c1")[-1]["dispensed"] == 1
    assert rig.runs_for("c1") == 2


def test_expired_command_never_runs() -> None:
    rig = ready_rig()
    rig.order("c1", 1, expires_at=T0 - 1)
    assert rig.motor == []
    assert rig.results("c1")[-1]["status"] == "expired"
    assert rig.lcd == ("Order expired", "Refund on way")


def test_rejections() -> None:
    rig = ready_rig(max_quantity=8)
    rig.order("big", 9)
    rig.order("many", 3)  # runs
    rig.finish_motor()
    rig.order("toomany", 8)  # stock is 7
    rig.set_desired(2, mode="out_of_service")
    rig.order("oos", 1)
    errors = {r["cmd_id"]: r.get("error") for r in rig.results() if r["status"] == "rejected"}
    assert errors == {
        "big": "invalid_quantity",
        "toomany": "insufficient_stock",
        "oos": "out_of_service",
    }
    assert rig.lcd == ("Cannot vend now", "Refund on way")
    rig.now += 5
    rig.send(("tick",))
    assert rig.lcd == ("Out of service", "Sorry")


def test_invalid_payload_is_rejected_and_empty_payload_ignored() -> None:
    rig = ready_rig()
    rig.deliver(topics.cmd(MID, "bad"), b'{"cmd_id":"bad"}')
    assert rig.results("bad")[-1]["status"] == "rejected"
    count = len(rig.published)
    assert rig.deliver(topics.cmd(MID, "c2"), b"") == []
    assert len(rig.published) == count
    # a body naming another command is refused
    rig.deliver(topics.cmd(MID, "c3"), command("c4"))
    assert rig.results("c3")[-1]["error"] == "cmd_id_mismatch"
    assert rig.motor == []


def test_command_rejected_before_clock_is_set() -> None:
    rig = Rig(now=1000)
    rig.connect()
    rig.set_desired(1)
    rig.order("c1", 1, expires_at=T0)
    assert rig.results("c1")[-1] == {
        "cmd_id": "c1",
        "status": "rejected",
        "dispensed": 0,
        "error": "clock_not_set",
        "ts": 1000,
    }


def test_reboot_mid_run_is_reported_unknown_and_never_rerun() -> None:
    rig = ready_rig()
    rig.order("c1", 3)
    rig.send(("motor_done", rig.pending.pop(0)))  # one unit out
    assert rig.storage.get("inflight") == {"cmd_id": "c1", "quantity": 3, "dispensed": 1}
    rig.reboot()  # power cut during the second unit
    assert rig.storage.get("inflight") is None
    rig.connect()
    unknown = rig.results("c1")[-1]
    assert unknown["status"] == "unknown" and unknown["dispensed"] == 1
    rig.order("c1", 3)  # the retained command comes back
    assert rig.runs_for("c1") == 2
    assert rig.results("c1")[-1]["status"] == "unknown"
    assert rig.ctrl.stock == 9


def test_drop_sensor_counts_real_units_on_jam() -> None:
    rig = ready_rig(drop_sensor=True)
    rig.order("c1", 3)
    assert rig.actions[-1][0] == "lcd"
    motor = [a for a in rig.actions if a[0] == "motor"][-1]
    assert motor[3] == 600  # settle time for the beam
    rig.send(("drop",))
    rig.send(("motor_done", rig.pending.pop(0)))
    actions = rig.send(("jam",))
    assert ("motor_stop",) in actions
    final = rig.results("c1")[-1]
    assert final["status"] == "failed" and final["dispensed"] == 1 and final["error"] == "jam"
    assert rig.of_kind("events")[-1]["type"] == "jam"
    assert rig.ctrl.mode() == "error"
    assert rig.lcd == ("Only 1/3 given", "Refund for rest")
    rig.order("c2", 1)
    assert rig.results("c2")[-1]["error"] == "machine_error"
    rig.send(("door", True))
    rig.send(("door", False))
    assert rig.ctrl.mode() == "idle"
    assert [e["type"] for e in rig.of_kind("events")[-2:]] == ["door_open", "door_closed"]


def test_drop_sensor_missing_item_fails_with_real_count() -> None:
    rig = ready_rig(drop_sensor=True)
    rig.order("c1", 2)
    rig.send(("drop",))
    rig.send(("motor_done", rig.pending.pop(0)))
    rig.send(("motor_done", rig.pending.pop(0)))  # nothing crossed the beam
    final = rig.results("c1")[-1]
    assert (final["status"], final["dispensed"], final["error"]) == ("failed", 1, "not_dropped")
    assert rig.ctrl.mode() == "idle"


def test_lower_or_equal_desired_version_is_ignored() -> None:
    rig = ready_rig()
    rig.set_desired(5, code="555555")
    rig.set_desired(4, code="444444")
    rig.set_desired(5, code="999999")
    assert rig.ctrl.version == 5
    assert rig.lcd == ("Code 555555", "Rs 25.00")
    rig.reboot()
    assert rig.ctrl.version == 5
    rig.set_desired(3, code="333333")
    assert rig.ctrl.desired is not None and rig.ctrl.desired["display"]["code"] == "555555"


def test_desired_stock_overrides_local_stock_on_higher_version() -> None:
    rig = ready_rig()
    rig.order("c1", 2)
    rig.finish_motor()
    assert rig.ctrl.stock == 8
    rig.set_desired(2, stock=20)
    assert rig.ctrl.stock == 20
    assert rig.of_kind("reported")[-1]["stock"] == 20


def test_ledger_keeps_last_32_commands() -> None:
    rig = ready_rig()
    for i in range(SIZE + 3):
        rig.order(f"c{i}", 1, expires_at=T0 - 1)
    ledger = rig.storage.get("ledger")
    assert isinstance(ledger, list) and len(ledger) == SIZE
    assert ledger[0]["cmd_id"] == "c3" and ledger[-1]["cmd_id"] == f"c{SIZE + 2}"


def test_results_finished_offline_are_sent_on_reconnect() -> None:
    rig = ready_rig()
    rig.order("c1", 1)
    rig.send(("disconnected",))
    assert rig.lcd == ("Dispensing 1/1", "Please wait")
    rig.finish_motor()
    assert [r["status"] for r in rig.results("c1")] == ["accepted"]
    rig.now += 10
    rig.send(("tick",))
    assert rig.lcd == ("Offline", "Reconnecting...")
    rig.connect()
    assert rig.results("c1")[-1]["status"] == "succeeded"


def test_second_command_waits_for_the_first() -> None:
    rig = ready_rig()
    rig.order("c1", 1)
    rig.order("c2", 1)
    assert rig.runs_for("c2") == 0
    rig.finish_motor()
    assert rig.runs_for("c1") == 1 and rig.runs_for("c2") == 1
    assert [r["cmd_id"] for r in rig.results() if r["status"] == "succeeded"] == ["c1", "c2"]


def _telemetry_times(rig: Rig, seconds: int) -> list[int]:
    for _ in range(seconds):
        rig.now += 1
        rig.send(("tick", {"rssi": -60}))
    return [p[1]["ts"] for p in rig.published if p[0] == topics.telemetry(rig.mid)]


def test_telemetry_is_periodic_qos0_not_retained() -> None:
    rig = Rig({"telemetry_s": 30}, rand=lambda: 0.5)  # no jitter at 0.5
    rig.connect()
    rig.now += 15  # the first one comes half a period after connecting
    rig.send(("tick", {"rssi": -60, "free_mem": 50000}))
    rig.now += 10
    rig.send(("tick",))
    rig.now += 20
    rig.send(("tick",))
    sent = [p for p in rig.published if p[0] == topics.telemetry(MID)]
    assert len(sent) == 2
    assert sent[0][1] == {"ts": T0 + 15, "uptime_s": 15, "free_mem": 50000, "rssi": -60}
    assert sent[0][2:] == (False, 0)


def test_telemetry_defaults_to_a_minute_with_jitter_from_the_first_one() -> None:
    """Machines that reconnect together (a broker restart) spread their telemetry."""
    firsts = []
    for n in range(20):
        rig = Rig(mid=f"VM-{n}")
        rig.connect()
        times = _telemetry_times(rig, 600)
        firsts.append(times[0] - T0)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(48 <= gap <= 73 for gap in gaps), gaps  # 60 s +/- 20 %, ticks of 1 s
        assert 8 <= len(times) <= 13
    assert all(1 <= first <= 61 for first in firsts)
    assert len(set(firsts)) >= 10  # spread over the period, not all at once


def test_telemetry_is_independent_of_presence_and_can_be_off() -> None:
    rig = Rig({"telemetry_s": 0})
    rig.connect()
    assert _telemetry_times(rig, 900) == []
    rig = Rig({"telemetry_s": 600, "telemetry_jitter": 0})  # every ten minutes
    rig.connect()
    times = _telemetry_times(rig, 1800)
    assert [b - a for a, b in itertools.pairwise(times)] == [600, 600]


def test_lcd_states_follow_desired() -> None:
    rig = Rig()
    assert rig.lcd == ("Offline", "Reconnecting...")
    rig.connect()
    assert rig.lcd == ("SmartVend", "Starting...")
    rig.set_desired(1, code="123456")
    assert rig.lcd == ("Code 123456", "Rs 25.00")
    rig.set_desired(2, lock=True)
    assert rig.lcd == ("In use", "Pay on phone")
    assert rig.of_kind("reported")[-1]["mode"] == "locked"
    rig.set_desired(3, code="654321", stock=0)
    assert rig.lcd == ("Out of stock", "Sorry")
    rig.set_desired(4, code="654321", expires_at=T0 + 5)
    rig.now += 6
    rig.send(("tick",))
    assert rig.lcd == ("Please wait", "Rs 25.00")
    rig.deliver(topics.SERVER_STATUS, messages.server_offline())
    assert rig.lcd == ("Service paused", "Please wait")


def test_will_matches_boot_counter() -> None:
    ctrl = Controller(MID)
    ctrl.handle(("connecting",), T0)
    assert ctrl.will()[1] == messages.status_lost(1)

"""The virtual fleet over a real Mosquitto, the server's part played by the test."""

import json
import time
from pathlib import Path

import pytest

from device import simulate
from device.simulator import Fleet
from schema import topics
from tests.device.server import FakeServer, cmd_obj, desired_obj, fake_server

pytestmark = pytest.mark.mosquitto

MACHINES = [("sim-a", "key-a"), ("sim-b", "key-b"), ("sim-c", "key-c")]


def result_is(mid: str, cmd_id: str, status: str):  # type: ignore[no-untyped-def]
    return lambda r: (
        r[0] == "results" and r[1] == mid and r[2] == cmd_id and r[3]["status"] == status
    )


async def show_codes(fleet: Fleet, server: FakeServer, now: int) -> None:
    for index, (mid, _) in enumerate(MACHINES):
        await server.desired(mid, desired_obj(1, code=f"10000{index}", now=now))
    for index, (mid, _) in enumerate(MACHINES):
        vm = fleet.machine(mid)
        await vm.wait_for(lambda vm=vm, i=index: vm.lcd == (f"Code 10000{i}", "Rs 25.00"))


async def test_fleet_vend_over_mosquitto(mosquitto_port: int) -> None:
    now = int(time.time())
    async with (
        fake_server(mosquitto_port) as server,
        Fleet(MACHINES, "127.0.0.1", mosquitto_port, motor_ms=100, seed=1) as fleet,
    ):
        await fleet.wait_online()
        online = await server.wait_for(lambda r: r[0] == "status" and r[3]["state"] == "online", 3)
        assert {r[1] for r in online} == {mid for mid, _ in MACHINES}
        await show_codes(fleet, server, now)

        await server.desired("sim-b", desired_obj(2, lock=True, now=now))
        vm = fleet.machine("sim-b")
        await vm.wait_for(lambda: vm.lcd == ("In use", "Pay on phone"))
        assert vm.state == "locked"

        await server.command("sim-b", cmd_obj("c-1", 2, now=now))
        done = await server.wait_for(result_is("sim-b", "c-1", "succeeded"))
        assert done[0][3]["dispensed"] == 2
        progress = [(r["status"], r["dispensed"]) for r in server.results("sim-b", "c-1")]
        assert progress == [("accepted", 0), ("running", 1), ("succeeded", 2)]
        assert vm.motor_runs == 2
        assert fleet.machine("sim-a").motor_runs == fleet.machine("sim-c").motor_runs == 0
        assert vm.controller.stock == 8

        await server.clear_command("sim-b", "c-1")
        await server.command("sim-b", cmd_obj("c-1", 2, now=now), retain=False)
        again = await server.wait_for(result_is("sim-b", "c-1", "succeeded"), count=2)
        assert again[1][3] == again[0][3]
        assert vm.motor_runs == 2

        summary = fleet.summary()
        assert summary["online"] == 3 and summary["connected"] == 3
        assert (summary["commands"], summary["vends_ok"], summary["vends_failed"]) == (1, 1, 0)
        assert "vends ok 1" in fleet.summary_line()


async def test_jam_fails_with_real_count_and_operator_clears_it(mosquitto_port: int) -> None:
    now = int(time.time())
    async with (
        fake_server(mosquitto_port) as server,
        Fleet(
            MACHINES[:1], "127.0.0.1", mosquitto_port, motor_ms=100, jam_rate=1.0, service_s=0.3
        ) as fleet,
    ):
        await fleet.wait_online()
        vm = fleet.machine("sim-a")
        await server.desired("sim-a", desired_obj(1, code="111111", now=now))
        await server.command("sim-a", cmd_obj("j-1", 2, now=now))
        failed = await server.wait_for(result_is("sim-a", "j-1", "failed"))
        assert failed[0][3]["dispensed"] == 0 and failed[0][3]["error"] == "jam"
        events = await server.wait_for(lambda r: r[0] == "events", 3)
        assert [e[3]["type"] for e in events] == ["jam", "door_open", "door_closed"]
        await vm.wait_for(lambda: vm.state == "idle")
        assert fleet.summary()["vends_failed"] == 1


async def test_reboot_mid_vend_reports_unknown(mosquitto_port: int) -> None:
    now = int(time.time())
    async with (
        fake_server(mosquitto_port) as server,
        Fleet(MACHINES[:1], "127.0.0.1", mosquitto_port, motor_ms=5000) as fleet,
    ):
        await fleet.wait_online()
        vm = fleet.machine("sim-a")
        await server.desired("sim-a", desired_obj(1, code="111111", now=now))
        await server.command("sim-a", cmd_obj("r-1", 2, now=now))
        await server.wait_for(result_is("sim-a", "r-1", "accepted"))
        runs = vm.motor_runs  # the motor starts after `accepted`, maybe not yet
        vm.reboot()  # power cut while the first unit is still turning
        lost = await server.wait_for(lambda r: r[0] == "status" and r[3]["state"] == "lost")
        assert lost[0][3]["boot"] == 1
        unknown = await server.wait_for(result_is("sim-a", "r-1", "unknown"))
        assert unknown[0][3]["dispensed"] == 0
        back = await server.wait_for(lambda r: r[0] == "status" and r[3].get("boot") == 2)
        assert back[0][3]["state"] == "online"
        # the retained command came back after the reboot and was answered, not re-run
        assert vm.motor_runs == runs <= 1
        await vm.wait_for(lambda: vm.online)
        assert len(server.results("sim-a", "r-1")) >= 2


async def test_simulate_command_line(mosquitto_port: int, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    creds = tmp_path / "machines.json"
    creds.write_text(
        json.dumps({"machines": [{"machine_id": m, "api_key": k} for m, k in MACHINES]})
    )
    args = simulate.build_parser().parse_args(
        [
            "--machines",
            "2",
            "--mqtt-url",
            f"mqtt://127.0.0.1:{mosquitto_port}",
            "--credentials",
            str(creds),
            "--duration",
            "2.5",
        ]
    )
    await simulate.run(args)
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["machines"] == 2 and summary["online"] == 2
    assert any("online 2" in line for line in out[:-1])


def test_mqtt_url_and_credentials(tmp_path: Path) -> None:
    assert simulate.parse_mqtt_url("mqtt://broker:1884") == ("broker", 1884, False)
    assert simulate.parse_mqtt_url("mqtts://broker") == ("broker", 8883, True)
    with pytest.raises(ValueError):
        simulate.parse_mqtt_url("http://broker")
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(ValueError):
        simulate.load_credentials(str(bad))


async def test_dropped_connection_fires_will_and_reconnects(mosquitto_port: int) -> None:
    async with (
        fake_server(mosquitto_port) as server,
        Fleet(MACHINES[:1], "127.0.0.1", mosquitto_port, drop_connection_rate=1.0) as fleet,
    ):
        await fleet.wait_online()
        lost = await server.wait_for(lambda r: r[0] == "status" and r[3]["state"] == "lost")
        assert lost[0][3] == {"state": "lost", "boot": 1}
        back = await server.wait_for(lambda r: r[0] == "status" and r[3].get("boot") == 2)
        assert back[0][3]["state"] == "online"
        assert fleet.machine("sim-a").stats.connects >= 2


async def test_telemetry_period_is_a_setting(mosquitto_port: int) -> None:
    args = simulate.build_parser().parse_args(["--telemetry-s", "600"])
    assert args.telemetry_s == 600
    async with fake_server(mosquitto_port) as server:
        await server.client.subscribe(topics.machine_filter("telemetry"), qos=0)
        fleet = Fleet(MACHINES, "127.0.0.1", mosquitto_port, telemetry_s=1, seed=3)
        assert fleet.machine("sim-a").controller.config["telemetry_s"] == 1
        async with fleet:
            sent = await server.wait_for(lambda r: r[0] == "telemetry", count=6)
        assert {r[1] for r in sent} == {mid for mid, _ in MACHINES}
        assert all(r[3] is not None and "uptime_s" in r[3] for r in sent)
    default = Fleet(MACHINES[:1], "127.0.0.1", mosquitto_port)
    assert default.machine("sim-a").controller.config["telemetry_s"] == 60

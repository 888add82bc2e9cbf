"""Simulated machines with several slots and per-slot faults, over a real Mosquitto."""

import json
import time
from pathlib import Path
from typing import Any

import pytest

from device import simulate
from device.simulator import Fleet
from tests.device.server import cmd_obj, desired_obj, fake_server
from tests.device.test_simulator import result_is

pytestmark = pytest.mark.mosquitto


def slot(sid: str, motor: int, name: str, stock: int = 5) -> dict[str, Any]:
    price = {"amount": 2000, "currency": "INR"}
    return {
        "id": sid,
        "motor": motor,
        "name": name,
        "price": price,
        "stock": stock,
        "enabled": True,
    }


SNACKS = [
    slot("A1", 0, "Cola"),
    slot("A2", 1, "Soda"),
    slot("B1", 2, "Chips"),
    slot("B2", 3, "Nuts"),
    slot("C1", 4, "Choco"),
    slot("C2", 5, "Gum"),
]


def order(cmd_id: str, now: int, lines: list[tuple[str, int, int]]) -> dict[str, Any]:
    obj = cmd_obj(cmd_id, sum(q for _, _, q in lines), now=now)
    obj["lines"] = [{"slot": s, "motor": m, "quantity": q} for s, m, q in lines]
    return obj


async def test_six_slots_with_a_jammed_and_an_empty_slot(mosquitto_port: int) -> None:
    now = int(time.time())
    machines = [("snack-1", "k1"), ("drink-1", "k2")]
    async with (
        fake_server(mosquitto_port) as server,
        Fleet(
            machines,
            "127.0.0.1",
            mosquitto_port,
            motor_ms=50,
            settle_ms=10,
            seed=3,
            slot_counts={"snack-1": 6},
            jam_slots=["B1"],
            empty_slots=["C2"],
            service_s=60,
        ) as fleet,
    ):
        await fleet.wait_online()
        desired = desired_obj(1, code="123456", stock=30, now=now)
        await server.desired("snack-1", {**desired, "slots": SNACKS})
        vm = fleet.machine("snack-1")
        await vm.wait_for(lambda: vm.lcd[1].startswith(("A1", "A2", "B1", "B2", "C1", "C2")))

        lines = [("A1", 0, 2), ("B1", 2, 1), ("C2", 5, 1), ("C1", 4, 1)]
        await server.command("snack-1", order("o-1", now, lines))
        done = await server.wait_for(result_is("snack-1", "o-1", "failed"))
        final = done[0][3]
        assert final["dispensed"] == 3 and final["error"] == "jam"  # the first line's error
        assert final["lines"] == [
            {"slot": "A1", "dispensed": 2},
            {"slot": "B1", "dispensed": 0},  # jammed
            {"slot": "C2", "dispensed": 0},  # empty: turned, nothing fell
            {"slot": "C1", "dispensed": 1},
        ]
        assert vm.slot_runs == {"A1": 2, "B1": 1, "C2": 1, "C1": 1}
        assert vm.state == "idle"  # one jammed spiral does not stop a snack machine

        # A motor the machine does not have: refused before anything turns.
        await server.command("snack-1", order("o-2", now, [("Z9", 6, 1)]))
        refused = await server.wait_for(result_is("snack-1", "o-2", "rejected"))
        assert refused[0][3]["error"] == "unknown_motor"

        # The one-slot machine beside it still works the v1 way.
        await server.desired("drink-1", desired_obj(1, code="654321", now=now))
        await server.command("drink-1", cmd_obj("d-1", 1, now=now))
        ok = await server.wait_for(result_is("drink-1", "d-1", "succeeded"))
        assert "lines" not in ok[0][3]


def test_command_line_flags_for_slots(tmp_path: Path) -> None:
    creds = tmp_path / "machines.json"
    entries = [
        {"machine_id": "demo-1", "api_key": "k"},
        {"machine_id": "snack-1", "api_key": "k", "slots": 6},
    ]
    creds.write_text(json.dumps({"machines": entries}))
    args = simulate.build_parser().parse_args(
        ["--slots", "2", "--jam-slot", "B1", "--jam-slot", "B2", "--empty-slot", "A2"]
    )
    assert (args.slots, args.jam_slot, args.empty_slot) == (2, ["B1", "B2"], ["A2"])
    assert simulate.load_slot_counts(str(creds)) == {"snack-1": 6}
    fleet = Fleet(
        simulate.load_credentials(str(creds)),
        slots=2,
        slot_counts=simulate.load_slot_counts(str(creds)),
    )
    assert fleet.machine("demo-1").config["motors"] == 2
    assert fleet.machine("snack-1").config["motors"] == 6

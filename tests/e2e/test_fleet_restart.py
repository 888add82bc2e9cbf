"""Simulated machines started again come back online: their boot counter is in flash.

CONTRACT 1: a machine is online from its ``online`` status until a ``lost`` of the
same or a higher ``boot``, and ``boot`` grows on every (re)connect and is kept in
flash. A fleet whose power is cut (its wills fire) and that is started again on
the same flash announces higher boots, and the server takes every machine back.
Started on fresh flash it would announce boot 1 again, a status the server
rightly ignores; that is why ``make run`` keeps its demo machines' flash in var/.
"""

from pathlib import Path

from tests.e2e import flow
from tests.support.stack import running_stack

MACHINES = ("again-1", "again-2", "again-3")


async def test_a_fleet_started_again_on_its_flash_comes_back_online(tmp_path: Path) -> None:
    async with running_stack(tmp_path, mqtt=True) as stack:
        services = stack.services
        keys = [(mid, await flow.register(services, mid)) for mid in MACHINES]
        flash = str(tmp_path / "flash")
        boots: list[dict[str, int]] = []
        for _life in range(2):
            async with flow.fleet(stack.settings.mqtt_port, keys, flash_dir=flash) as fleet:
                for mid in MACHINES:
                    await flow.wait_online(services, mid)
                boots.append({mid: fleet.machine(mid).controller.boot for mid in MACHINES})
                for mid in MACHINES:  # power cut: no DISCONNECT, so the broker sends the wills
                    fleet.machine(mid).drop_connection()
            for mid in MACHINES:
                await flow.wait_status(
                    services, mid, lambda s: not s["online"], "offline after the power cut"
                )
        first, second = boots
        assert all(second[mid] > first[mid] for mid in MACHINES), boots
        assert {path.name for path in (tmp_path / "flash").iterdir()} == {
            f"{mid}.json" for mid in MACHINES
        }

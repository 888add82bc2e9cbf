"""The whole server with ``SMARTVEND_HA_DISCOVERY_PREFIX`` set: its embedded broker lets the
Home Assistant account read discovery, and its bridge publishes it (settings to wire)."""

from pathlib import Path

from api.mqtt.accounts import create_integrator
from api.services.machines import NewMachine
from tests.bridge.test_home_assistant import HA_USER, home_assistant, states
from tests.support.stack import running_stack


async def test_the_server_publishes_discovery_when_the_prefix_is_set(tmp_path: Path) -> None:
    async with running_stack(tmp_path, mqtt=True, ha_discovery_prefix="hass-test") as stack:
        services = stack.services
        await services.machines.register(
            NewMachine(machine_id="vm-7", name="Gate", price_amount=2000, capacity=8, stock=8)
        )
        _, password = await create_integrator(
            services.ctx.db, services.ctx.clock, HA_USER, home_assistant=True
        )
        settings = stack.settings
        async with home_assistant(settings.mqtt_host, settings.mqtt_port, password) as ha:
            await ha.until(
                lambda m: len(m.devices) == 2 and states(m, "vm-7")["slot_1_stock"] == "8",
                "the server and the new machine",
            )
            gate = ha.model.device("smartvend_vm-7")
            assert gate.info["name"] == "Gate"
            assert all(entity.available for entity in gate.entities.values())

"""A display code that runs out is replaced by the server and reaches the machine."""

from pathlib import Path

from tests.e2e import flow
from tests.support.stack import running_stack


async def test_expired_code_is_rotated_and_shown(tmp_path: Path) -> None:
    async with running_stack(tmp_path, mqtt=True, display_code_ttl_s=2) as stack:
        key = await flow.register(stack.services, "rot-1")
        async with flow.fleet(stack.settings.mqtt_port, [("rot-1", key)]) as fleet:
            vm = fleet.machine("rot-1")
            await flow.wait_online(stack.services, "rot-1")
            first = await flow.lcd_code(vm)
            # the server's deadline loop rotates it; the device shows the new one
            second = await flow.lcd_code(vm, other_than=first)
            third = await flow.lcd_code(vm, other_than=second)
            assert len({first, second, third}) == 3
            assert vm.controller.version >= 3

"""The machine side of a shopper's journey, pluggable.

A journey needs a machine that shows a code and answers the one dispense
command of an order.  ``ServiceMachine`` plays it straight through the
server's services (no MQTT); a simulated device on a real broker can stand
in by implementing ``VendingMachine`` the same way.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from api.services.machines import NewMachine
from schema.models import Machine
from tests.support.services import unfinished_commands
from tests.support.stack import Stack


@dataclass(frozen=True)
class Step:
    """One result the machine reports: ``status`` with ``dispensed`` units out so far."""

    status: str
    dispensed: int


@dataclass(frozen=True)
class Command:
    cmd_id: str
    quantity: int
    order_id: str


class VendingMachine(Protocol):
    machine_id: str

    async def display_code(self) -> str:
        """The code its display shows now (what a shopper reads)."""
        ...

    async def next_command(self) -> Command:
        """Wait (a few seconds at most) for the dispense command the server sends it."""
        ...

    async def report(self, command: Command, step: Step) -> None:
        """Report a result of ``command`` as the device would."""
        ...


COMMAND_WAIT_S = 10.0
Provision = Callable[..., Awaitable[VendingMachine]]


def vend_all(quantity: int) -> list[Step]:
    return [
        Step("accepted", 0),
        *(Step("running", n) for n in range(1, quantity)),
        Step("succeeded", quantity),
    ]


def vend_then_fail(quantity: int, dispensed: int) -> list[Step]:
    return [
        Step("accepted", 0),
        *(Step("running", n) for n in range(1, dispensed + 1)),
        Step("failed", dispensed),
    ]


async def play(
    machine: VendingMachine,
    steps: Sequence[Step],
    after: Callable[[Step], Awaitable[None]] | None = None,
) -> Command:
    """Answer the next command with ``steps``; ``after`` runs after each (e.g. check the page)."""
    command = await machine.next_command()
    for step in steps:
        await machine.report(command, step)
        if after is not None:
            await after(step)
    return command


class ServiceMachine:
    """A machine played through the services of a stack running without MQTT."""

    def __init__(self, stack: Stack, machine_id: str) -> None:
        self.stack = stack
        self.machine_id = machine_id

    async def display_code(self) -> str:
        async with self.stack.services.ctx.db.begin() as s:
            machine = await s.get(Machine, self.machine_id)
        assert machine is not None and machine.display_code, "the machine shows no code"
        return machine.display_code

    async def next_command(self) -> Command:
        deadline = time.monotonic() + COMMAND_WAIT_S
        while time.monotonic() < deadline:
            for cmd in await unfinished_commands(self.stack.services):
                if cmd.machine_id == self.machine_id and cmd.status == "pending":
                    return Command(cmd.id, cmd.quantity, cmd.order_id)
            await asyncio.sleep(0.05)  # no event to await: the command is a database row
        raise AssertionError(f"no dispense command for {self.machine_id} within {COMMAND_WAIT_S}s")

    async def report(self, command: Command, step: Step) -> None:
        applied = await self.stack.services.dispense.apply_result(
            self.machine_id, command.cmd_id, step.status, step.dispensed
        )
        assert applied, f"the server ignored {step}"


async def provision_service_machine(
    stack: Stack,
    machine_id: str = "lobby-1",
    *,
    name: str = "Lobby snacks",
    price: int = 2500,
    stock: int = 8,
    online: bool = True,
    location: str | None = "Ground floor, by the lifts",
    simulated: bool = False,
) -> ServiceMachine:
    await stack.services.machines.register(
        NewMachine(
            machine_id=machine_id,
            name=name,
            price_amount=price,
            capacity=20,
            stock=stock,
            location=location,
            simulated=simulated,
        )
    )
    if online:
        await stack.services.machines.apply_status(machine_id, {"state": "online", "boot": 1})
    return ServiceMachine(stack, machine_id)

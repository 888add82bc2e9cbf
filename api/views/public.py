"""Read models: what shoppers and devices are shown. No writes here."""

from typing import Any

from sqlalchemy import select

from api.errors import MachineNotFound
from api.lifecycle.states import COMMAND_FINAL, ordered
from api.services import outgoing, planogram, sessions, vend_lines
from api.services.context import Context
from schema.models import Command, Machine, VendSession


class Views:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def public_status(
        self, machine_id: str, client_id: str, *, simulated_display: bool = False
    ) -> dict[str, Any]:
        """The machine as a shopper sees it; with ``simulated_display`` (dev mode) a
        simulated machine's status also says what its display shows (``display_code``)."""
        async with self.ctx.db() as s:
            machine = await s.get(Machine, machine_id)
            if machine is None:
                raise MachineNotFound(f"no machine {machine_id}")
            lock = await sessions.active_session(s, machine_id)
            found = await planogram.rows(s, machine_id)
        now = self.ctx.clock.now()
        live = lock is not None and lock.expires_at > now
        shown: dict[str, Any] = {
            "machine_id": machine.id,
            "name": machine.name,
            "online": machine.online,
            "mode": outgoing.state_payload(machine, live)["mode"],
            "stock": machine.stock,
            "price": outgoing.price_of(machine),
            "locked": live,
            "locked_by_you": bool(live and client_id and lock and lock.client_id == client_id),
            "lock_expires_at": lock.expires_at if live and lock else None,
            # Whether the display shows a code now (never the code itself): a page can say
            # "enter the new code" only once there is one.
            "code_on_display": lock is None and machine.display_code is not None,
            "slots": planogram.public_slots(found, machine.currency),
        }
        if simulated_display and machine.simulated:
            shown["display_code"] = _shown_code(machine, lock, now)
        return shown

    async def fleet(self) -> list[dict[str, Any]]:
        """Every machine as a shopper's machine finder lists it."""
        async with self.ctx.db() as s:
            machines = (
                await s.scalars(
                    select(Machine).where(Machine.removed_at.is_(None)).order_by(Machine.name)
                )
            ).all()
        return [
            {
                "machine_id": m.id,
                "name": m.name,
                "location": m.location,
                "online": m.online,
                "in_service": m.mode == "in_service",
                "stock": m.stock,
                "price": outgoing.price_of(m),
            }
            for m in machines
        ]

    async def device_status(self, machine_id: str) -> dict[str, Any]:
        """The HTTP fallback's view for a device: its desired state and open commands."""
        async with self.ctx.db() as s:
            machine = await s.get(Machine, machine_id)
            if machine is None:
                raise MachineNotFound(f"no machine {machine_id}")
            lock = await sessions.active_session(s, machine_id)
            commands = (
                await s.scalars(
                    select(Command)
                    .where(
                        Command.machine_id == machine_id,
                        Command.status.not_in(ordered(COMMAND_FINAL)),
                    )
                    .order_by(Command.issued_at)
                )
            ).all()
            lines = await vend_lines.of_orders(s, [c.order_id for c in commands])
        return {
            "desired": outgoing.desired_payload(machine, lock),
            "commands": [
                outgoing.command_payload(c, vend_lines.command_lines(lines[c.order_id]))
                for c in commands
            ],
        }


def _shown_code(machine: Machine, lock: VendSession | None, now: int) -> str | None:
    """The code a display shows: none while a lock is held or once the code ran out."""
    expires_at = machine.display_code_expires_at
    if lock is not None or machine.display_code is None or expires_at is None:
        return None
    return machine.display_code if expires_at > now else None

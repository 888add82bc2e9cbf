"""One dispense command per paid order, and what the machine says about it.

Results may arrive twice, late or out of order: a final status is final, a
progress report never moves a command backwards, and silence past the
command's deadline counts as ``unknown``.  Whatever did not come out is
refunded at the order's unit price.  Each event is one decision of
``api.lifecycle.vend``, applied by ``api.services.vend_writer``.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from api.errors import CommandNotFound
from api.lifecycle import decide, vend
from api.lifecycle.states import COMMAND_FINAL, CommandStatus, ordered
from api.services import vend_load, vend_rows, vend_writer
from api.services.context import Context
from schema.models import Command

UNFINISHED = Command.status.not_in(ordered(COMMAND_FINAL))


def per_slot(lines: Sequence[Mapping[str, Any]] | None) -> dict[str, int] | None:
    """A result's per-line counts by slot (None when the machine sent none)."""
    if not lines:
        return None
    return {str(line["slot"]): int(line["dispensed"]) for line in lines}


class Dispense:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def apply_result(
        self,
        machine_id: str,
        cmd_id: str,
        status: CommandStatus,
        dispensed: int,
        error: str | None = None,
        lines: Sequence[Mapping[str, Any]] | None = None,
    ) -> bool:
        """Apply a device's report; False when it changed nothing (unknown, duplicate, late).

        ``lines`` are the result's per-line counts (``[{"slot","dispensed"}]``), when the
        machine sent them."""
        now = self.ctx.clock.now()
        per_line = per_slot(lines)
        async with self.ctx.db.begin() as s:
            if not vend.settles(status):  # progress concerns the command and its order alone
                rows = await vend_rows.reported(s, cmd_id, machine_id)
                if rows is None:
                    return False
                outcome = vend.machine_result(
                    vend_load.snapshot(rows), status, dispensed, error, per_line=per_line
                )
                await vend_writer.progress(s, rows, outcome, now)
                return outcome.changed
            loaded = await vend_load.by_command(s, cmd_id, machine_id)
            if loaded is None:
                return False
            outcome = vend.machine_result(loaded.vend, status, dispensed, error, per_line=per_line)
            await vend_writer.apply(s, loaded.rows, outcome, now, policy=self.ctx.policy)
            return outcome.changed

    async def confirm(self, machine_id: str, cmd_id: str, dispensed: int) -> bool:
        """The HTTP fallback's final word: all units out is success, fewer is failure."""
        async with self.ctx.db.begin() as s:
            command = await s.get(Command, cmd_id)
            if command is None or command.machine_id != machine_id:
                raise CommandNotFound("no such command on this machine")
            quantity = command.quantity
        status = decide.confirmed_status(dispensed, quantity)
        return await self.apply_result(machine_id, cmd_id, status, dispensed)

    async def time_out(self, now: int) -> int:
        """Commands past their deadline with no final word end ``unknown``."""
        async with self.ctx.db.begin() as s:
            overdue = (
                await s.execute(
                    select(Command.id, Command.machine_id)
                    .where(UNFINISHED, Command.deadline <= now)
                    .with_for_update()
                )
            ).all()
            for cmd_id, machine_id in overdue:
                loaded = await vend_load.by_command(s, cmd_id, machine_id)
                assert loaded is not None
                outcome = vend.deadline_passed(loaded.vend, now)
                await vend_writer.apply(s, loaded.rows, outcome, now, policy=self.ctx.policy)
        return len(overdue)

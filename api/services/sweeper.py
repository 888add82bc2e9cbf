"""Deadlines: locks and codes that ran out, silent commands.

Presence is not a deadline: a machine is online from its ``online`` status until
a ``lost`` one (CONTRACT 1), and a half-open connection is the broker's to end
(keepalive, then the will). Silence alone never takes a machine offline.

``tick(now)`` is idempotent and cheap when nothing is due; the server runs it
every second, tests call it after moving the clock.
"""

from dataclasses import dataclass

from sqlalchemy import select

from api.lifecycle.states import SessionStatus
from api.lifecycle.table import Event
from api.services import outgoing
from api.services.codes import rotate_code
from api.services.context import Context
from api.services.dispense import Dispense
from api.services.locks import end_lock
from schema.models import Machine, VendSession


@dataclass(frozen=True)
class Swept:
    sessions: int = 0
    codes: int = 0
    commands: int = 0

    @property
    def total(self) -> int:
        return self.sessions + self.codes + self.commands


ROTATE_CHUNK = 200  # machines whose codes are rotated in one transaction


class Sweeper:
    def __init__(self, ctx: Context, dispense: Dispense) -> None:
        self.ctx = ctx
        self.dispense = dispense

    async def tick(self) -> Swept:
        now = self.ctx.clock.now()
        commands = await self.dispense.time_out(now)
        return Swept(
            sessions=await self._expire_sessions(now),
            codes=await self._rotate_codes(now),
            commands=commands,
        )

    async def _expire_sessions(self, now: int) -> int:
        async with self.ctx.db.begin() as s:
            stale = (
                await s.scalars(
                    select(VendSession)
                    .where(
                        VendSession.status == SessionStatus.ACTIVE, VendSession.expires_at <= now
                    )
                    .with_for_update()
                )
            ).all()
            ended = 0
            for session in stale:  # a vend in flight keeps its lock
                if await end_lock(s, self.ctx, session.id, Event.EXPIRED, now) is None:
                    ended += 1
            return ended

    async def _rotate_codes(self, now: int) -> int:
        """New codes for the machines whose codes came due, ``ROTATE_CHUNK`` machines a
        transaction: a fleet whose codes all came due at once (provisioned together) is
        never held in one long transaction that every shopper's lock would wait behind.
        On PostgreSQL a machine locked by a shopper right now is left for the next pass."""
        rotated = 0
        while True:
            async with self.ctx.db.begin() as s:
                due = (
                    await s.scalars(
                        select(Machine)
                        .where(Machine.display_code_expires_at <= now)
                        .order_by(Machine.display_code_expires_at, Machine.id)
                        .limit(ROTATE_CHUNK)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                for machine in due:
                    await rotate_code(s, machine, now, self.ctx.policy.display_code_ttl_s)
                    await outgoing.machine_changed(s, machine, now)
            rotated += len(due)
            if len(due) < ROTATE_CHUNK:
                return rotated

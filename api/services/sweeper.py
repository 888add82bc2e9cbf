"""Deadlines: locks and codes that ran out, silent commands, silent machines.

``tick(now)`` is idempotent and cheap when nothing is due; the server runs it
every second, tests call it after moving the clock.
"""

from dataclasses import dataclass

from sqlalchemy import select

from api.services import outbox
from api.services.codes import rotate_code
from api.services.context import Context
from api.services.dispense import Dispense
from api.services.locks import end_session
from schema.models import Machine, Order, VendSession


@dataclass(frozen=True)
class Swept:
    sessions: int = 0
    codes: int = 0
    commands: int = 0
    offline: int = 0

    @property
    def total(self) -> int:
        return self.sessions + self.codes + self.commands + self.offline


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
            offline=await self._silent_machines(now),
        )

    async def _expire_sessions(self, now: int) -> int:
        async with self.ctx.db.begin() as s:
            stale = (
                await s.scalars(
                    select(VendSession)
                    .where(VendSession.status == "active", VendSession.expires_at <= now)
                    .with_for_update()
                )
            ).all()
            ended = 0
            for session in stale:
                busy = await s.scalar(
                    select(Order.id).where(
                        Order.session_id == session.id, Order.status.in_(("paid", "dispensing"))
                    )
                )
                if busy is None:  # a vend in flight keeps its lock until it ends
                    await end_session(s, self.ctx, session, "expired", now)
                    ended += 1
            return ended

    async def _rotate_codes(self, now: int) -> int:
        async with self.ctx.db.begin() as s:
            due = (
                await s.scalars(
                    select(Machine).where(Machine.display_code_expires_at <= now).with_for_update()
                )
            ).all()
            for machine in due:
                await rotate_code(s, machine, now, self.ctx.policy.display_code_ttl_s)
                await outbox.machine_changed(s, machine, now)
            return len(due)

    async def _silent_machines(self, now: int) -> int:
        """Online machines not heard from within the keepalive allowance go offline."""
        cutoff = now - self.ctx.policy.presence_timeout_s
        async with self.ctx.db.begin() as s:
            silent = (
                await s.scalars(
                    select(Machine)
                    .where(Machine.online.is_(True), Machine.last_seen < cutoff)
                    .with_for_update()
                )
            ).all()
            for machine in silent:
                machine.online = False
                await outbox.machine_changed(s, machine, now, desired=False)
            return len(silent)

"""Locking a machine with the code on its display, and letting it go.

A code is single use: the winning lock clears it with a compare-and-set
UPDATE, so of many shoppers typing the same code exactly one gets the
machine; the partial unique index on active sessions backs that up.

Every guess spends its budgets first (``api.services.guesses``); a right code,
or an answer that says nothing about the code, gives them back.
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import (
    InsufficientStock,
    InvalidCode,
    InvalidRequest,
    MachineBusy,
    MachineNotFound,
    MachineOffline,
    MachineOutOfService,
    NotLockOwner,
    SmartVendError,
    VendInProgress,
)
from api.infra.prepared import Prepared
from api.lifecycle import decide, vend
from api.lifecycle.table import Event
from api.services import lock_rows, outgoing, planogram, vend_writer
from api.services.codes import rotate_code
from api.services.context import Context
from api.services.guesses import GuessGuard, GuessLimits
from schema.models import Machine, VendSession

CODE_LENGTH = 6
_LIVE_CODES = Prepared(
    select(func.count())
    .select_from(lock_rows.MACHINES)
    .where(
        lock_rows.MACHINES.c.display_code.is_not(None),
        lock_rows.MACHINES.c.display_code_expires_at > bindparam("now"),
    )
)
MAX_CLIENT_ID = 64


@dataclass(frozen=True)
class Lock:
    machine_id: str
    session_id: str
    expires_at: int
    price: dict[str, int | str]
    max_quantity: int
    slots: list[dict[str, Any]] = field(default_factory=list)


def valid_client_id(client_id: str) -> bool:
    return 8 <= len(client_id) <= MAX_CLIENT_ID and client_id.isprintable()


async def end_lock(
    s: AsyncSession,
    ctx: Context,
    session_id: str,
    reason: Event,
    now: int,
    *,
    vend_keeps_it: bool = True,
) -> str | None:
    """End a lock: unpaid orders expire, the machine shows a new code.

    Returns the lifecycle's refusal, if it keeps the lock (a vend in flight).
    """
    rows = await lock_rows.held(s, session_id)
    assert rows is not None, f"no lock {session_id}"
    return await _end(s, ctx, rows, reason, now, vend_keeps_it=vend_keeps_it)


async def _end(
    s: AsyncSession, ctx: Context, rows: lock_rows.LockRows, reason: Event, now: int, **how: bool
) -> str | None:
    outcome = vend.lock_ended(rows.vend, reason, now, **how)
    if outcome.refusal is None:
        await vend_writer.end_lock(s, rows, outcome, now, policy=ctx.policy)
    return outcome.refusal


class Locks:
    def __init__(self, ctx: Context, guard: GuessGuard) -> None:
        self.ctx = ctx
        self.guard = guard

    @classmethod
    def guard_for(cls, ctx: Context) -> GuessGuard:
        return GuessGuard(ctx.budgets, GuessLimits.from_policy(ctx.policy))

    async def lock_by_code(
        self, code: str, client_id: str, machine_id: str | None = None, source: str = ""
    ) -> Lock:
        if not valid_client_id(client_id):
            raise InvalidRequest("client_id must be 8 to 64 printable characters")
        if not (len(code) == CODE_LENGTH and code.isdigit() and code.isascii()):
            # Never a machine's code: no chance of a hit, nothing to count.
            raise InvalidCode("a code is the 6 digits on the machine's display")
        clock = self.ctx.clock.now
        async with self.guard.turn(machine_id):
            live = 0 if machine_id is not None else await self._live_codes(clock())
            charges, now = await self.guard.admit_in_turn(
                client_id, source or "unknown", machine_id, live, clock
            )
            right = True
            try:
                return await self._lock(code, client_id, machine_id, source, now)
            except InvalidCode:
                right = False  # a failed attempt: its budgets stay spent
                raise
            finally:
                await self.guard.settle(charges, now, right=right)

    async def _live_codes(self, now: int) -> int:
        """How many machines a code-only guess could hit."""
        async with self.ctx.db.begin() as s:
            return int(await _LIVE_CODES.scalar(s, {"now": now}) or 0)

    async def _lock(
        self, code: str, client_id: str, machine_id: str | None, source: str, now: int
    ) -> Lock:
        refusal: SmartVendError | None = None
        async with self.ctx.db.begin() as s:
            if machine_id is not None:
                found = await lock_rows.machine_with_lock(s, machine_id=machine_id)
                if found is None:
                    raise MachineNotFound(f"no machine {machine_id}")
                # The shopper named it: say it cannot sell before judging the code.
                self._check_reachable(found[0])
            else:
                found = await lock_rows.machine_with_lock(s, code=code)
            if found is None:
                raise InvalidCode("that code is not on any machine's display")
            machine, current = found
            if current is not None and decide.session_live(current.status, current.expires_at, now):
                if current.client_id == client_id:
                    return self._lock_of(machine, current, await planogram.shown(s, machine))
                raise MachineBusy("someone else is using this machine right now")
            if current is not None:
                # A lock that ran out but was not swept yet: end it now; its
                # shopper's code is gone and the machine shows a fresh one.
                await end_lock(s, self.ctx, current.id, Event.EXPIRED, now, vend_keeps_it=False)
                refusal = InvalidCode("the code has changed; read the new one on the display")
            elif not decide.code_shown(
                machine.display_code, machine.display_code_expires_at, code, now
            ):
                await self._count_machine_failure(s, machine.id, now)
                refusal = InvalidCode("wrong or expired code; check the machine's display")
            else:
                shown = await planogram.shown(s, machine)
                self._check_available(machine, shown)
                ttl = self.ctx.policy.lock_ttl_s
                try:
                    lock = await vend_writer.take_lock(
                        s, machine, code, client_id, source, now, ttl
                    )
                except IntegrityError as exc:  # the one active lock a machine may have
                    raise MachineBusy("someone else took this machine a moment ago") from exc
                if lock is None:
                    raise MachineBusy("someone else took this machine a moment ago")
                return self._lock_of(machine, lock, shown)
        assert refusal is not None
        raise refusal

    def _lock_of(self, machine: Machine, session: VendSession, found: list[dict[str, Any]]) -> Lock:
        units = planogram.sellable_shown(found) if found else machine.stock
        return Lock(
            machine_id=machine.id,
            session_id=session.id,
            expires_at=session.expires_at,
            price={"amount": machine.price_amount, "currency": machine.currency},
            max_quantity=min(self.ctx.policy.max_quantity, units),
            slots=found,
        )

    def _check_reachable(self, machine: Machine) -> None:
        """503 for a machine that is out of service or offline, whatever its stock."""
        found = decide.availability(machine.mode, machine.online, 1)
        if found is decide.Availability.OUT_OF_SERVICE:
            raise MachineOutOfService("this machine is out of service")
        if found is decide.Availability.OFFLINE:
            raise MachineOffline("this machine is offline")

    def _check_available(self, machine: Machine, shown: list[dict[str, Any]]) -> None:
        self._check_reachable(machine)
        # Empty only when every enabled slot is (CONTRACT 5).
        units = planogram.sellable_shown(shown) if shown else machine.stock
        if units < 1:
            raise InsufficientStock("this machine is empty")

    async def _count_machine_failure(self, s: AsyncSession, machine_id: str, now: int) -> None:
        """Spend the machine's failure budget; when it runs out the code changes."""
        machine = await s.get(Machine, machine_id, with_for_update=True)
        assert machine is not None
        machine.code_failures += 1
        budget = self.ctx.policy.code_failure_budget
        if decide.code_spent(machine.code_failures, budget, machine.display_code):
            await rotate_code(s, machine, now, self.ctx.policy.display_code_ttl_s)
            await outgoing.machine_changed(s, machine, now)

    async def unlock(self, machine_id: str, client_id: str, session_id: str) -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            rows = await lock_rows.held(s, session_id)
            if rows is None or not _holds(rows.lock, machine_id, client_id):
                raise NotLockOwner("this lock is not yours")
            refusal = await _end(s, self.ctx, rows, Event.UNLOCKED, now)
            if refusal == vend.VEND_IN_FLIGHT:
                raise VendInProgress("your items are being dispensed")
            if refusal is not None:
                raise NotLockOwner("this lock is not yours")


def _holds(lock: VendSession, machine_id: str, client_id: str) -> bool:
    return lock.machine_id == machine_id and lock.client_id == client_id


async def owned_lock(
    s: AsyncSession, machine_id: str, client_id: str, session_id: str
) -> VendSession:
    """The lock ``session_id`` on ``machine_id``, row-locked, if ``client_id`` holds it."""
    session = await s.get(VendSession, session_id, with_for_update=True)
    if session is None or not _holds(session, machine_id, client_id):
        raise NotLockOwner("this lock is not yours")
    return session

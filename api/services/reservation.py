"""Keeping a shopper's reservation while they pay: extended in steps, never past a cap.

A lock lasts ``LOCK_TTL_S`` from the unlock (create-order renews it to a full
``LOCK_TTL_S`` from the order). While checkout is open its page asks again every
few seconds; each ask moves the lock's end to ``HOLD_STEP_S`` from now, never
past the **cap**: ``CHECKOUT_GRACE_S`` beyond the unlock's own ``LOCK_TTL_S``.
A shopper who closes the checkout stops asking, and the machine is free again
at most ``HOLD_STEP_S`` later. The latest the reservation can last
(``hold_until``) is what the gateway's checkout timeout follows.

Only the lock's end time changes here, written by the vend writer like every
other change to a lock; its status is not touched.
"""

from dataclasses import dataclass

from api.errors import CheckoutNotOpen, SessionExpired
from api.lifecycle import decide
from api.lifecycle.snapshot import Outcome, Publish
from api.lifecycle.states import BUSY, OrderStatus
from api.services import vend_load, vend_writer
from api.services.context import Context
from api.services.locks import owned_lock
from schema.models import VendSession

CHECKOUT_GRACE_S = 180  # at most 3 minutes past LOCK_TTL_S from the unlock
# Each ask keeps the machine this much longer: a page asks every 20 s, and a phone may
# slow a hidden page's timers to one a minute while its shopper is in the bank's app.
HOLD_STEP_S = 90


@dataclass(frozen=True)
class Hold:
    machine_id: str
    session_id: str
    expires_at: int  # the lock's end now
    hold_until: int  # the latest it can last while checkout stays open


def cap(created_at: int, ttl_s: int) -> int:
    """The latest an extension may move a lock's end to."""
    return created_at + ttl_s + CHECKOUT_GRACE_S


def extended_end(created_at: int, expires_at: int, now: int, ttl_s: int) -> int:
    """A lock's end after one ask: ``HOLD_STEP_S`` from now, within the cap, never earlier."""
    return max(expires_at, min(cap(created_at, ttl_s), now + HOLD_STEP_S))


def hold_until(created_at: int, expires_at: int, ttl_s: int) -> int:
    """The latest the reservation can last: the cap, or later if create-order renewed it."""
    return max(expires_at, cap(created_at, ttl_s))


class Reservations:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def extend(self, machine_id: str, client_id: str, session_id: str) -> Hold:
        """Keep the lock of a shopper whose checkout is open (an unpaid order on it)."""
        now = self.ctx.clock.now()
        ttl_s = self.ctx.policy.lock_ttl_s
        async with self.ctx.db.begin() as s:
            session = await owned_lock(s, machine_id, client_id, session_id)
            if not decide.session_live(session.status, session.expires_at, now):
                raise SessionExpired("your reservation ran out")
            loaded = await vend_load.by_session(s, session)
            orders = [status for _id, status in loaded.rows.session_orders]
            paid = any(status in BUSY for status in orders)  # the vend holds it until it ends
            if not paid and OrderStatus.CREATED not in orders:
                raise CheckoutNotOpen("no payment is waiting on this lock: press Pay first")
            end = (
                session.expires_at
                if paid
                else extended_end(session.created_at, session.expires_at, now, ttl_s)
            )
            if end != session.expires_at:
                outcome = Outcome(session_expires_at=end, publish=Publish(desired=True))
                await vend_writer.apply(s, loaded.rows, outcome, now, policy=self.ctx.policy)
            return _hold(session, ttl_s)

    async def of_order(self, session_id: str) -> Hold | None:
        """An order's reservation as its checkout page shows it; None once it ended."""
        now = self.ctx.clock.now()
        async with self.ctx.db() as s:
            session = await s.get(VendSession, session_id)
        if session is None or not decide.session_live(session.status, session.expires_at, now):
            return None
        return _hold(session, self.ctx.policy.lock_ttl_s)


def _hold(session: VendSession, ttl_s: int) -> Hold:
    return Hold(
        machine_id=session.machine_id,
        session_id=session.id,
        expires_at=session.expires_at,
        hold_until=hold_until(session.created_at, session.expires_at, ttl_s),
    )

"""The lock rows (vend sessions): the machine's active lock, a vend in flight, unpaid orders.

Where locks live, below the services that take and end them
(``api.services.locks``) and the outbox writer that shows them to devices.
"""

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.commit_feed import order_channel, touch
from api.lifecycle.states import BUSY, OrderStatus, SessionStatus, ordered
from api.lifecycle.table import Event, step
from schema.models import Order, VendSession


async def active_session(s: AsyncSession, machine_id: str) -> VendSession | None:
    found = await s.scalars(
        select(VendSession).where(
            VendSession.machine_id == machine_id, VendSession.status == SessionStatus.ACTIVE
        )
    )
    return found.first()


async def vend_in_flight(s: AsyncSession, session_id: str) -> bool:
    """True while an order of the lock is paid and not finished: it keeps the lock."""
    busy = await s.scalar(
        select(Order.id)
        .where(Order.session_id == session_id, Order.status.in_(ordered(BUSY)))
        .limit(1)
    )
    return busy is not None


async def expire_unpaid(s: AsyncSession, session_id: str, event: Event, now: int) -> None:
    """The lock's unpaid orders expire (the lock ended, or a newer order replaces them)."""
    expired = await s.scalars(
        update(Order)
        .where(Order.session_id == session_id, Order.status == OrderStatus.CREATED)
        .values(status=step(OrderStatus, OrderStatus.CREATED, event), updated_at=now)
        .returning(Order.id)
    )
    touch(s, *(order_channel(order_id) for order_id in expired.all()))

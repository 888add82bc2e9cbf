"""The lock rows (vend sessions): a machine's active lock.

Where locks are found, below the services that take and end them
(``api.services.locks``) and the outbox writer that shows them to devices.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.lifecycle.states import SessionStatus
from schema.models import VendSession


async def active_session(s: AsyncSession, machine_id: str) -> VendSession | None:
    found = await s.scalars(
        select(VendSession).where(
            VendSession.machine_id == machine_id, VendSession.status == SessionStatus.ACTIVE
        )
    )
    return found.first()

"""Display codes: six digits, single use, unique across the fleet."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.security.ids import new_display_code
from schema.models import Machine


async def rotate_code(s: AsyncSession, machine: Machine, now: int, ttl_s: int) -> None:
    """Give ``machine`` a fresh code nobody else shows; the caller publishes desired."""
    for _ in range(20):
        code = new_display_code()
        if code == machine.display_code:
            continue
        taken = await s.scalar(select(Machine.id).where(Machine.display_code == code))
        if taken is None:
            break
    else:  # pragma: no cover - a million codes and a small fleet
        raise RuntimeError("could not find a free display code")
    machine.display_code = code
    machine.display_code_expires_at = now + ttl_s
    machine.code_failures = 0

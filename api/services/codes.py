"""Display codes: six digits, single use, unique across the fleet."""

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.infra.prepared import Prepared
from api.security.ids import new_display_code
from schema.models import Machine, table

MACHINES = table(Machine)
CODE_TRIES = 20  # a code taken 20 times in a row: a fleet near a million machines
_SHOWN = Prepared(select(MACHINES.c.id).where(MACHINES.c.display_code == bindparam("code")))


async def free_code(s: AsyncSession, current: str | None) -> str:
    """A code no machine shows, other than ``current``."""
    for _ in range(CODE_TRIES):
        code = new_display_code()
        if code == current:
            continue
        if await _SHOWN.first(s, {"code": code}) is None:
            return code
    raise RuntimeError("could not find a free display code")  # pragma: no cover - 10^6 codes


async def rotate_code(s: AsyncSession, machine: Machine, now: int, ttl_s: int) -> None:
    """Give ``machine`` a fresh code nobody else shows; the caller publishes desired."""
    await s.flush()  # codes given to other machines in this transaction are seen
    machine.display_code = await free_code(s, machine.display_code)
    machine.display_code_expires_at = now + ttl_s
    machine.code_failures = 0

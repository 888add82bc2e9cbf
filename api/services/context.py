"""What every service needs: the unit of work, the clock and the policy."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.clock import Clock
from api.services.policy import VendPolicy


@dataclass(frozen=True)
class Context:
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    policy: VendPolicy

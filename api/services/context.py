"""What every service needs: the unit of work, the clock, the policy, the rate budgets and
the operators' calendar."""

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.clock import Clock, LocalCalendar
from api.services.budgets import BudgetStore, MemoryBudgets
from api.services.policy import VendPolicy


@dataclass(frozen=True)
class Context:
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    policy: VendPolicy
    budgets: BudgetStore = field(default_factory=MemoryBudgets)  # shared across workers on PG
    calendar: LocalCalendar = field(default_factory=LocalCalendar)  # operators' days (TIMEZONE)

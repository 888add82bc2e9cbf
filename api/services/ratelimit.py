"""Counting failed attempts per key: admin logins and shoppers' feedback.

Each key (``scope: identity``, e.g. ``login: "admin|203.0.113.7"``) has a budget
of ``limits[scope]`` attempts that refills over ``window_s``: a token bucket in
the :class:`~api.services.budgets.BudgetStore` the services share, in memory with
one process and in PostgreSQL with several, so a limit holds whichever worker a
request reaches. An attempt is spent before it is checked (concurrent attempts
cannot slip past the limit) and given back when it did not count, so a right
password is never slowed down. Code guesses have their own budgets
(``api.services.guesses``).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from api.errors import RateLimited
from api.services.budgets import BudgetStore, Charge, MemoryBudgets, Rate


@dataclass
class FailureLimiter:
    window_s: int
    limits: dict[str, int]
    what: str = "wrong codes"  # what was spent, for the refusal's message
    name: str = "failures"  # keeps its keys apart from other budgets in the same store
    store: BudgetStore = field(default_factory=MemoryBudgets)

    def charges(self, keys: dict[str, str]) -> list[Charge]:
        return [
            Charge(
                f"{self.name}-{scope}:{key}",
                Rate(self.limits[scope], self.limits[scope] / self.window_s),
            )
            for scope, key in keys.items()
        ]

    async def spend(self, keys: dict[str, str], now: int) -> list[Charge]:
        """Spend one attempt of every key, or raise RateLimited when one has none left."""
        charges = self.charges(keys)
        refusal = await self.store.take(charges, now)
        if refusal is not None:
            retry = max(1, min(self.window_s, math.ceil(refusal.wait_s)))
            raise RateLimited(f"too many {self.what}; try again in {retry} s", retry_after=retry)
        return charges

    async def give_back(self, charges: Sequence[Charge], now: int) -> None:
        """The attempt did not count after all."""
        await self.store.give_back(charges, now)

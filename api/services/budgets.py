"""Failure budgets: token buckets kept behind a small port.

A budget holds up to ``capacity`` tokens and regains ``per_s`` tokens a second,
so in any span of ``t`` seconds at most ``capacity + per_s * t`` tokens can be
spent: the bound the guessing arithmetic in docs/security.md rests on.

``take`` spends several budgets at once, all or nothing, before a guess is
checked; ``give_back`` returns them when the guess was right (only failures
count). Spending before checking keeps the bound under any concurrency.

``MemoryBudgets`` keeps them in this process. The ``BudgetStore`` protocol is
what a shared store (a PostgreSQL table updated with ``SELECT ... FOR UPDATE``)
implements when several server processes must share the budgets.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_KEYS = 100_000  # full buckets are forgotten beyond this many


@dataclass(frozen=True)
class Rate:
    capacity: float
    per_s: float

    def wait_for(self, level: float, cost: float) -> float:
        """Seconds until ``cost`` tokens are there; infinite if they never can be."""
        if cost > self.capacity or self.per_s <= 0:
            return math.inf
        return max(0.0, (cost - level) / self.per_s)


@dataclass(frozen=True)
class Charge:
    key: str  # "scope:identity", e.g. "machine:vm-1"
    rate: Rate
    cost: float = 1.0


@dataclass(frozen=True)
class Refusal:
    charge: Charge
    wait_s: float  # math.inf when the cost exceeds the budget's capacity


class BudgetStore(Protocol):
    async def take(self, charges: Sequence[Charge], now: float) -> Refusal | None:
        """Spend every charge, or none and say which one could not be paid."""
        ...

    async def give_back(self, charges: Sequence[Charge], now: float) -> None: ...

    async def level(self, charge: Charge, now: float) -> float:
        """Tokens left in the charge's budget."""
        ...


@dataclass
class _Bucket:
    tokens: float
    at: float
    full_at: float  # from then on it is the same as no bucket


class MemoryBudgets:
    """``BudgetStore`` in a dict; one event loop makes take/give_back atomic."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def _level(self, charge: Charge, now: float) -> float:
        bucket = self._buckets.get(charge.key)
        if bucket is None:
            return charge.rate.capacity
        regained = max(0.0, now - bucket.at) * charge.rate.per_s
        return min(charge.rate.capacity, bucket.tokens + regained)

    def _set(self, charge: Charge, tokens: float, now: float) -> None:
        rate = charge.rate
        refill = (rate.capacity - tokens) / rate.per_s if rate.per_s > 0 else math.inf
        self._buckets[charge.key] = _Bucket(tokens=tokens, at=now, full_at=now + refill)

    async def take(self, charges: Sequence[Charge], now: float) -> Refusal | None:
        levels = [self._level(c, now) for c in charges]
        for charge, level in zip(charges, levels, strict=True):
            if level < charge.cost:
                return Refusal(charge, charge.rate.wait_for(level, charge.cost))
        for charge, level in zip(charges, levels, strict=True):
            self._set(charge, level - charge.cost, now)
        if len(self._buckets) > MAX_KEYS:
            self._forget_full(now)
        return None

    async def give_back(self, charges: Sequence[Charge], now: float) -> None:
        for charge in charges:
            level = self._level(charge, now)
            self._set(charge, min(charge.rate.capacity, level + charge.cost), now)

    async def level(self, charge: Charge, now: float) -> float:
        return self._level(charge, now)

    def _forget_full(self, now: float) -> None:
        """A bucket refilled to capacity is the same as no bucket: drop those."""
        stale = [k for k, b in self._buckets.items() if b.full_at <= now]
        for key in stale:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)

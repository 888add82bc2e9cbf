"""``BudgetStore`` in PostgreSQL: budgets every server process shares.

One row per bucket (``rate_budgets``). ``take`` is one statement, committed on
its own: an ``INSERT ... ON CONFLICT DO UPDATE ... WHERE enough RETURNING key``
over the charges in key order. A missing bucket is inserted already charged; an
existing one is refilled for the time passed and charged only if it holds
enough, under its row lock (a concurrent take on the same bucket waits, then
sees the charged row). If any bucket could not pay, those that did are given
back at once, so a take is all or nothing, and its refusal is read afterwards.
``give_back`` is one such statement too. Rows are always locked in key order,
so statements never deadlock each other, and no row lock outlives its
statement: every shopper behind one address charges the same ``source`` row,
and a lock held across a round trip of a busy event loop would queue them all.

The statements carry each charge's rate in the row (``capacity``, ``per_s``) and
its cost in the proposed row, since ``EXCLUDED`` is all ``ON CONFLICT`` can see:
for a take as ``capacity - tokens`` (the row a missing bucket gets), for a give-back
as ``at - full_at`` (a missing bucket is inserted full, and a full bucket's
``full_at`` may be any time up to now). Full buckets are the same as no row and
are deleted now and then.
"""

import asyncio
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, column, delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.infra.prepared import Prepared
from api.services.budgets import Charge, Refusal
from schema.models import RateBudget

KEY_MAX = 160
PRUNE_EVERY = 500  # takes between two deletions of full buckets
_SLOW = 1e-9  # a budget that never refills is full "never" (a very long time)
_ATTEMPTS = 3

# The statements are fixed text over arrays (one element per bucket, in key order), so
# they are compiled and prepared once, not built again for every guess.
_ROWS = """
    SELECT v.key, v.tokens, v.at, v.capacity, v.per_s, v.full_at
    FROM unnest(CAST(:keys AS text[]), CAST(:tokens AS float8[]), CAST(:at AS float8[]),
                CAST(:capacity AS float8[]), CAST(:per_s AS float8[]),
                CAST(:full_at AS float8[]))
         WITH ORDINALITY AS v(key, tokens, at, capacity, per_s, full_at, n)
    ORDER BY v.n
"""
_LEVEL = "LEAST(EXCLUDED.capacity, t.tokens + GREATEST(0.0, EXCLUDED.at - t.at) * EXCLUDED.per_s)"
_COST = "(EXCLUDED.capacity - EXCLUDED.tokens)"  # a take's cost rides in the proposed row
_BACK = f"LEAST(EXCLUDED.capacity, {_LEVEL} + (EXCLUDED.at - EXCLUDED.full_at))"
_TAKE = Prepared(
    text(
        f"""
    INSERT INTO rate_budgets AS t (key, tokens, at, capacity, per_s, full_at) {_ROWS}
    ON CONFLICT (key) DO UPDATE SET
        tokens = {_LEVEL} - {_COST},
        at = EXCLUDED.at,
        capacity = EXCLUDED.capacity,
        per_s = EXCLUDED.per_s,
        full_at = EXCLUDED.at
            + (EXCLUDED.capacity - ({_LEVEL} - {_COST})) / GREATEST(EXCLUDED.per_s, {_SLOW})
    WHERE {_LEVEL} >= {_COST}
    RETURNING t.key
    """
    ).columns(column("key", String))
)
_GIVE_BACK = Prepared(
    text(
        f"""
    INSERT INTO rate_budgets AS t (key, tokens, at, capacity, per_s, full_at) {_ROWS}
    ON CONFLICT (key) DO UPDATE SET
        tokens = {_BACK},
        at = EXCLUDED.at,
        full_at = EXCLUDED.at + (EXCLUDED.capacity - {_BACK}) / GREATEST(EXCLUDED.per_s, {_SLOW})
    """
    )
)


def stored_key(key: str) -> str:
    """``key`` as stored: a long one (a long username in a login) is shortened by a digest."""
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return key[: KEY_MAX - len(digest) - 1] + "#" + digest


def _merged(charges: Sequence[Charge]) -> dict[str, Charge]:
    """One charge per stored key (a statement may touch a row once), in key order."""
    found: dict[str, Charge] = {}
    for charge in charges:
        key = stored_key(charge.key)
        held = found.get(key)
        found[key] = charge if held is None else Charge(key, charge.rate, held.cost + charge.cost)
    return dict(sorted(found.items()))


def _level(row: tuple[float, float] | None, charge: Charge, now: float) -> float:
    if row is None:
        return charge.rate.capacity
    tokens, at = row
    return min(charge.rate.capacity, tokens + max(0.0, now - at) * charge.rate.per_s)


def _columns(rows: Iterable[tuple[str, float, float, float, float, float]]) -> dict[str, list[Any]]:
    """The statements' array parameters from rows of (key, tokens, at, capacity, per_s,
    full_at)."""
    names = ("keys", "tokens", "at", "capacity", "per_s", "full_at")
    found: dict[str, list[Any]] = {name: [] for name in names}
    for row in rows:
        for name, value in zip(names, row, strict=True):
            found[name].append(value)
    return found


@dataclass
class _GiveBacks:
    """Give-backs waiting to be written together."""

    charges: list[Charge] = field(default_factory=list)
    now: float = 0.0
    error: BaseException | None = None


class PostgresBudgets:
    """Token buckets in the ``rate_budgets`` table, shared by every process on the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._auto = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._takes = 0
        self._giving = asyncio.Lock()
        self._waiting: _GiveBacks | None = None

    async def take(self, charges: Sequence[Charge], now: float) -> Refusal | None:
        for charge in charges:
            if charge.cost > charge.rate.capacity:
                return Refusal(charge, math.inf)
        merged = _merged(charges)
        rows = _columns(
            (
                key,
                c.rate.capacity - c.cost,
                now,
                c.rate.capacity,
                c.rate.per_s,
                now + c.cost / max(c.rate.per_s, _SLOW),
            )
            for key, c in merged.items()
        )
        unpaid = charges[0]
        for _attempt in range(_ATTEMPTS):
            async with self._auto.connect() as conn:
                paid = {row["key"] for row in await _TAKE.all(conn, rows)}
            if len(paid) == len(merged):
                await self._maybe_prune(now)
                return None
            if paid:
                await self.give_back([merged[key] for key in sorted(paid)], now)
            refusal = await self._refusal(charges, now)
            if refusal is not None:
                return refusal
            # Refilled meanwhile (or another take gave back): try again.
            unpaid = next(c for c in charges if stored_key(c.key) not in paid)
        return Refusal(unpaid, 1.0)  # the bucket others kept taking from

    async def _refusal(self, charges: Sequence[Charge], now: float) -> Refusal | None:
        levels = await self._levels(charges, now)
        for charge, level in zip(charges, levels, strict=True):
            if level < charge.cost:
                return Refusal(charge, charge.rate.wait_for(level, charge.cost))
        return None

    async def _levels(self, charges: Sequence[Charge], now: float) -> list[float]:
        keys = [stored_key(c.key) for c in charges]
        async with self._auto.connect() as conn:
            found = {
                key: (tokens, at)
                for key, tokens, at in (
                    await conn.execute(
                        select(RateBudget.key, RateBudget.tokens, RateBudget.at).where(
                            RateBudget.key.in_(keys)
                        )
                    )
                ).all()
            }
        return [_level(found.get(k), c, now) for k, c in zip(keys, charges, strict=True)]

    async def give_back(self, charges: Sequence[Charge], now: float) -> None:
        """Give ``charges`` back. Give-backs that arrive while one is being written wait
        for it and are then written together, in one statement: a crowd of right codes
        costs a few statements, not one each. Each returns once its own is written."""
        batch = self._waiting
        if batch is None:
            batch = self._waiting = _GiveBacks()
        batch.charges.extend(charges)
        batch.now = max(batch.now, now)
        async with self._giving:
            if self._waiting is batch:  # not written by an earlier waiter
                self._waiting = None
                try:
                    await self._give_back_now(batch.charges, batch.now)
                except BaseException as error:
                    batch.error = error
                    raise
        if batch.error is not None:
            raise batch.error

    async def _give_back_now(self, charges: Sequence[Charge], now: float) -> None:
        rows = _columns(
            # A missing bucket is inserted full; the cost rides in ``full_at``.
            (key, c.rate.capacity, now, c.rate.capacity, c.rate.per_s, now - c.cost)
            for key, c in _merged(charges).items()
        )
        async with self._auto.connect() as conn:
            await _GIVE_BACK.all(conn, rows)

    async def level(self, charge: Charge, now: float) -> float:
        return (await self._levels([charge], now))[0]

    async def _maybe_prune(self, now: float) -> None:
        self._takes += 1
        if self._takes % PRUNE_EVERY:
            return
        async with self._auto.connect() as conn:
            await conn.execute(delete(RateBudget).where(RateBudget.full_at <= now))

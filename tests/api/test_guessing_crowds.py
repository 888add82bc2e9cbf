"""Honest crowds keep code-only entry; on a fake clock, through the real lock path.

1,000 shoppers an hour at a fleet of 40 machines, all behind one address (a
campus), 30 % of them typing the code alone on the home page; 5 % mistype it
first, 5 % type a code the machine showed before it changed (stale). Each then
types the right code. At most 2 % of code-only attempts may be answered
``machine_required``.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from api.clock import FakeClock
from api.errors import InvalidCode, MachineRequired, RateLimited
from api.services.container import Services
from api.services.policy import VendPolicy
from tests.api.test_guessing import (
    ADDRESS,
    CODES,
    DAY,
    FLEET,
    code_of,
    guard,
    live_codes,
    machines,
    mistyped,
)

SHOPPERS_PER_HOUR = 1_000
CODE_ONLY = 0.30
TYPO = 0.05
STALE = 0.05


@dataclass
class Tally:
    code_only_attempts: int = 0
    machine_required: int = 0
    failures: int = 0
    locks: int = 0
    other: list[str] = field(default_factory=list)


async def crowd(
    services: Services,
    clock: FakeClock,
    fleet: int,
    hours: float,
    sources: int,
    seed: int,
    per_hour: int = SHOPPERS_PER_HOUR,
) -> Tally:
    ids = await machines(services, fleet)
    rng = random.Random(seed)
    shown_before: dict[str, str] = {}  # each machine's previous code
    tally = Tally()
    gap = 3600 / per_hour

    async def attempt(code: str, client: str, named: str | None, source: str) -> str | None:
        if named is None:
            tally.code_only_attempts += 1
        try:
            lock = await services.locks.lock_by_code(code, client, named, source=source)
        except MachineRequired:
            tally.machine_required += 1
            return None
        except InvalidCode:
            tally.failures += 1
            return None
        tally.locks += 1
        return lock.session_id

    for n in range(int(per_hour * hours)):
        mid = rng.choice(ids)
        client = f"shopper-{n:06d}"
        source = ADDRESS if sources == 1 else f"10.{n % sources // 250}.{n % 250}.1"
        named = None if rng.random() < CODE_ONLY else mid
        code = await code_of(services, mid)
        roll = rng.random()
        if roll < TYPO:
            await attempt(mistyped(code, await live_codes(services, ids)), client, named, source)
        elif roll < TYPO + STALE and mid in shown_before:
            await attempt(shown_before[mid], client, named, source)
        session = await attempt(code, client, named, source)
        if session is None and named is None:  # the page asks which machine: named now
            session = await attempt(code, client, mid, source)
        if session is None:
            tally.other.append(client)
            continue
        clock.advance(int(gap))
        shown_before[mid] = code
        await services.locks.unlock(mid, client, session)
        await services.sweeper.tick()
    return tally


async def test_a_campus_crowd_keeps_code_only_entry(services: Services, clock: FakeClock) -> None:
    tally = await crowd(services, clock, fleet=40, hours=1, sources=1, seed=1)
    print(tally)
    assert tally.other == []
    assert tally.failures > 60  # the typos and stale codes did happen
    assert tally.machine_required <= 0.02 * tally.code_only_attempts


async def test_a_crowd_on_many_networks_at_a_bigger_fleet(
    services: Services, clock: FakeClock
) -> None:
    tally = await crowd(services, clock, fleet=300, hours=0.5, sources=150, seed=2)
    print(tally)
    assert tally.machine_required <= 0.02 * tally.code_only_attempts


# -- attackers who also earn code-only credit ------------------------------------


async def earning_attack(seconds: int, p_of: Callable[[str | None], float]) -> tuple[float, int]:
    """Unlimited addresses guess wrong at a chosen machine, named and code-only, as fast
    as allowed, and after every wrong code-only guess also make a right one (a
    confederate at some machine reading its display) to earn the fleet's budget."""
    g = guard()
    now, n, log_miss = 0, 0, 0.0
    while now < seconds:
        for machine_id in ("target", None):
            source = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
            try:
                await g.admit(f"attacker-{n}", source, machine_id, FLEET, now)
            except (RateLimited, MachineRequired):
                continue
            n += 1
            log_miss += math.log1p(-p_of(machine_id))
            if machine_id is None:
                try:
                    right = await g.admit(f"friend-{n}", f"192.0.2.{n % 200}", None, FLEET, now)
                except MachineRequired:
                    continue
                await g.right(right, now)
            break
        else:
            now += 1
    return -math.expm1(log_miss), n


async def test_earned_credit_keeps_the_chosen_machine_bounds() -> None:
    one_code = VendPolicy().display_code_ttl_s
    p, checked = await earning_attack(one_code, lambda _m: 1 / CODES)
    assert checked > 0 and p <= 1e-4
    p, checked = await earning_attack(DAY, lambda _m: 1 / CODES)
    print(f"a day, earning credit: {checked} guesses, P = {p:.4%}")
    assert checked > 0 and p <= 0.01


async def test_right_code_only_guesses_refill_the_fleet_budget_faster() -> None:
    g = guard()
    limit = VendPolicy().fleet_code_only_limit
    for i in range(limit - 1):  # the fleet's code-only budget nearly spent by wrong codes
        await g.admit(f"typo-{i}", f"10.0.0.{i}", None, FLEET, 0)
    # others type right codes on the home page meanwhile: each earns a token
    for i in range(3):
        await g.right(await g.admit(f"reader-{i}", f"10.0.2.{i}", None, FLEET, 0), 0)
    for i in range(4):  # the one token left and the three earned
        await g.admit(f"after-{i}", f"10.0.3.{i}", None, FLEET, 0)
    with pytest.raises(MachineRequired):
        await g.admit("one-more", "10.0.4.1", None, FLEET, 0)

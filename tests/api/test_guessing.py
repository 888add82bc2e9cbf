"""Code-guess defences on a fake clock: crowds pass, attackers stay within the bounds
docs/security.md derives (codes are 6 digits: each guess at one code hits 1 in 1e6).
"""

import math
from collections.abc import Callable

import pytest

from api.clock import FakeClock
from api.errors import InvalidCode, MachineRequired, RateLimited
from api.services.budgets import MemoryBudgets
from api.services.container import Services
from api.services.guesses import GuessGuard, GuessLimits, source_key
from api.services.machines import NewMachine
from api.services.policy import VendPolicy
from schema.models import Machine

CODES = 1_000_000
DAY = 86_400
FLEET = 1_000
ADDRESS = "203.0.113.7"


def guard() -> GuessGuard:
    return GuessGuard(MemoryBudgets(), GuessLimits.from_policy(VendPolicy()))


# A guess is (source, machine_id or None); it hits with probability p.
Guess = tuple[str, str | None, float]


async def attack(
    g: GuessGuard, seconds: int, plan: Callable[[int], list[Guess]]
) -> tuple[float, int, int]:
    """Guess as fast as the budgets allow for ``seconds``; every guess is wrong.

    ``plan(n)`` lists what the attacker would like to try next, best first; each
    answer that refuses moves on to the next, and when all refuse, time moves on
    by a second (sooner than any Retry-After). Returns (P(at least one hit),
    guesses checked, longest Retry-After seen).
    """
    now, n, log_miss, longest = 0, 0, 0.0, 0
    while now < seconds:
        for source, machine_id, p in plan(n):
            try:
                await g.admit(f"attacker-{n}", source, machine_id, FLEET, now)
            except RateLimited as exc:
                longest = max(longest, exc.retry_after or 0)
                continue
            except MachineRequired:
                continue
            n += 1
            log_miss += math.log1p(-p)
            break
        else:
            now += 1
    return -math.expm1(log_miss), n, longest


async def test_one_address_against_a_chosen_machine_within_a_code_lifetime() -> None:
    def plan(n: int) -> list[Guess]:
        return [(ADDRESS, "target", 1 / CODES), (ADDRESS, None, 1 / CODES)]

    p, checked, _ = await attack(guard(), VendPolicy().display_code_ttl_s, plan)
    assert checked > 0
    assert p <= 1e-4


@pytest.mark.parametrize("style", ["named", "code-only", "mixed"])
async def test_one_address_against_a_fleet_of_a_thousand_for_a_day(style: str) -> None:
    def plan(n: int) -> list[Guess]:
        named = (ADDRESS, f"m-{n % FLEET}", 1 / CODES)
        code_only = (ADDRESS, None, FLEET / CODES)
        return {"named": [named], "code-only": [code_only], "mixed": [code_only, named]}[style]

    p, checked, _ = await attack(guard(), DAY, plan)
    assert checked > 0
    assert p <= 0.05


async def test_unlimited_addresses_against_a_chosen_machine_for_a_day() -> None:
    def plan(n: int) -> list[Guess]:
        named = (f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", "target", 1 / CODES)
        code_only = (f"198.51.{n // 256 % 256}.{n % 256}", None, 1 / CODES)
        return [named, code_only]

    p, checked, longest = await attack(guard(), DAY, plan)
    assert checked > 0
    assert p <= 0.01
    assert 0 < longest <= 60  # shoppers at that machine are told how long to wait


async def test_code_only_budget_trips_for_the_fleet_and_spares_named_guesses() -> None:
    g = guard()
    limit = VendPolicy().fleet_code_only_limit
    for i in range(limit):  # many addresses, many shoppers, one wrong code each
        await g.admit(f"shopper-{i}", f"10.0.0.{i}", None, FLEET, 0)
    with pytest.raises(MachineRequired):
        await g.admit("newcomer", "192.0.2.1", None, FLEET, 0)
    await g.admit("newcomer", "192.0.2.1", "m-1", FLEET, 0)  # naming the machine works


async def test_an_ipv6_host_is_one_source_across_its_slash_64() -> None:
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:ffff::9")
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("::ffff:192.0.2.7") == source_key("192.0.2.7") == "192.0.2.7"
    g = guard()
    limit = VendPolicy().source_failure_limit
    for i in range(limit):  # named guesses spread over many machines and addresses of one /64
        await g.admit(f"c-{i}", f"2001:db8::{i:x}", f"m-{i}", FLEET, 0)
    with pytest.raises(RateLimited):
        await g.admit("c-last", "2001:db8::ffff:1", "m-last", FLEET, 0)


# -- the service, end to end on a fake clock ------------------------------------


async def machines(services: Services, count: int) -> list[str]:
    ids = [f"m-{i}" for i in range(count)]
    for mid in ids:
        await services.machines.register(
            NewMachine(machine_id=mid, name=mid, price_amount=2500, capacity=50, stock=50)
        )
        assert await services.machines.apply_status(mid, {"state": "online", "boot": 1})
    return ids


async def code_of(services: Services, mid: str) -> str:
    async with services.ctx.db.begin() as s:
        machine = await s.get(Machine, mid)
        assert machine is not None and machine.display_code is not None
        return machine.display_code


async def live_codes(services: Services, ids: list[str]) -> set[str]:
    return {await code_of(services, mid) for mid in ids}


def mistyped(code: str, taken: set[str]) -> str:
    for digit in range(1, 10):
        wrong = code[:-1] + str((int(code[-1]) + digit) % 10)
        if wrong not in taken:
            return wrong
    raise AssertionError("no free wrong code")


async def test_two_hundred_shoppers_behind_one_address_all_get_their_lock(
    services: Services, clock: FakeClock
) -> None:
    ids = await machines(services, 20)
    wrong_answers: list[Exception] = []
    for i in range(200):
        mid = ids[i % len(ids)]
        named = mid if i % 2 == 0 else None  # the machine's page, or the home page
        client = f"shopper-{i:05d}"
        code = await code_of(services, mid)
        if i % 3 == 0:  # a third mistype once
            typo = mistyped(code, await live_codes(services, ids))
            with pytest.raises(InvalidCode) as refused:
                await services.locks.lock_by_code(typo, client, named, source=ADDRESS)
            wrong_answers.append(refused.value)
        lock = await services.locks.lock_by_code(code, client, named, source=ADDRESS)
        assert lock.machine_id == mid
        clock.advance(10)
        await services.locks.unlock(mid, client, lock.session_id)
    assert len(wrong_answers) == 67
    assert all(type(e) is InvalidCode for e in wrong_answers)  # never 429, never "name it"


async def test_a_right_code_passes_after_hundreds_of_wrong_ones_from_its_address(
    services: Services, clock: FakeClock
) -> None:
    ids = await machines(services, 20)
    taken = await live_codes(services, ids)
    for i in range(300):  # others at the same address, each wrong once
        with pytest.raises(InvalidCode):
            await services.locks.lock_by_code(
                mistyped(await code_of(services, ids[i % 20]), taken),
                f"other-{i:05d}",
                ids[i % 20],
                source=ADDRESS,
            )
        clock.advance(1)
    clock.advance(VendPolicy().code_failure_refill_s * VendPolicy().code_failure_budget)
    lock = await services.locks.lock_by_code(
        await code_of(services, "m-3"), "honest-0001", "m-3", source=ADDRESS
    )
    assert lock.machine_id == "m-3"


async def test_a_machine_out_of_budget_rotates_its_code_and_says_how_long_to_wait(
    services: Services, clock: FakeClock
) -> None:
    await machines(services, 1)
    first = await code_of(services, "m-0")
    budget = services.ctx.policy.code_failure_budget
    for i in range(budget):
        with pytest.raises(InvalidCode):
            await services.locks.lock_by_code(
                mistyped(first, {first}), f"attacker-{i:04d}", "m-0", source=f"10.0.0.{i}"
            )
    fresh = await code_of(services, "m-0")
    assert fresh != first  # the budget is spent: the code changed
    with pytest.raises(RateLimited) as told:
        await services.locks.lock_by_code(fresh, "honest-0001", "m-0", source="192.0.2.9")
    assert told.value.retry_after is not None and 0 < told.value.retry_after <= 60
    clock.advance(told.value.retry_after)
    lock = await services.locks.lock_by_code(fresh, "honest-0001", "m-0", source="192.0.2.9")
    assert lock.machine_id == "m-0"


async def test_code_only_path_asks_for_the_machine_once_the_fleet_budget_is_spent(
    services: Services, clock: FakeClock
) -> None:
    ids = await machines(services, 3)
    taken = await live_codes(services, ids)
    for i in range(services.ctx.policy.fleet_code_only_limit):
        with pytest.raises(InvalidCode):
            await services.locks.lock_by_code(
                mistyped("000000", taken), f"guesser-{i:04d}", source=f"10.1.0.{i}"
            )
    right = await code_of(services, "m-1")
    with pytest.raises(MachineRequired, match="page of the machine"):
        await services.locks.lock_by_code(right, "honest-0001", source="192.0.2.9")
    lock = await services.locks.lock_by_code(right, "honest-0001", "m-1", source="192.0.2.9")
    assert lock.machine_id == "m-1"

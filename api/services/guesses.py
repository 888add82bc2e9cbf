"""Who may try a display code now: the budgets of failed code attempts.

A guess spends, before it is checked, one token of its shopper's budget
(``client_id``) and either, naming a machine, one of that machine's and one unit
of its source address's, or, with the code alone, one of the fleet's shared
code-only budget and as many units of its address's as there are live codes
(the chance that a code-only guess hits some machine is that many in a million).
A right code gives everything back: only failures count. A right code-only guess
(its code was on some machine's display: a shopper reading a display) also earns
the fleet's code-only budget one more token, from a small allowance of its own
(``CODE_ONLY_CREDIT``), so a crowd whose right codes far outnumber its typos and
stale codes refills that budget faster than the clock alone; the allowance bounds
what an attacker standing at a machine can earn by locking it again and again.

A guess in flight never makes another one look over budget: guesses at one
machine take turns (``turn``), and a guess refused by a budget that guesses still
in flight hold waits until they are settled, then tries again (``admit_in_turn``);
only a budget spent by settled failures refuses. So a burst of shoppers with right
codes is never refused for the budget their own guesses hold a moment, and
code-only guesses, which all share the fleet's budget, run side by side as far as
it holds (each has paid before its code is checked, so the bounds hold as before).

The address budget is loose (a campus behind one NAT never spends it) and
counted in these units, so one address's chance of hitting any machine stays
bounded whatever mix of guesses it makes. docs/security.md has the arithmetic.
"""

import asyncio
import contextlib
import ipaddress
import math
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from api.errors import MachineRequired, RateLimited
from api.services.budgets import BudgetStore, Charge, Rate, Refusal
from api.services.policy import VendPolicy

MAX_RETRY_AFTER_S = 60
DAY_S = 86_400
FLEET_CODE_ONLY = "fleet:code-only"
# Tokens right code-only guesses may add to the fleet's code-only budget: at most
# 5 at once and one per 2 minutes (720 a day); docs/security.md counts them in.
CODE_ONLY_CREDIT = Rate(5, 1 / 120)


@dataclass(frozen=True)
class GuessLimits:
    client: Rate
    source: Rate  # in guess units: a named guess is 1, a code-only one the live codes
    machine: Rate
    code_only: Rate  # the whole fleet's

    @classmethod
    def from_policy(cls, p: VendPolicy) -> "GuessLimits":
        return cls(
            client=Rate(p.client_failure_limit, p.client_failure_limit / p.failure_window_s),
            source=Rate(p.source_failure_limit, p.source_failures_per_day / DAY_S),
            machine=Rate(p.code_failure_budget, 1 / p.code_failure_refill_s),
            code_only=Rate(p.fleet_code_only_limit, 1 / p.fleet_code_only_refill_s),
        )


def source_key(source: str) -> str:
    """An IPv6 host owns its whole /64 (a home or phone gets one), so a /64 is one source."""
    try:
        ip = ipaddress.ip_address(source)
    except ValueError:
        return source
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def retry_after(wait_s: float) -> int:
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(wait_s)))


class GuessGuard:
    def __init__(self, store: BudgetStore, limits: GuessLimits) -> None:
        self.store = store
        self.limits = limits
        self._turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._held: dict[str, float] = {}  # budget key: what guesses in flight paid it
        self._settled = asyncio.Event()  # replaced each time a guess is settled

    @contextlib.asynccontextmanager
    async def turn(self, machine_id: str | None) -> AsyncIterator[None]:
        """One guess at a time per machine (code-only guesses run side by side)."""
        if machine_id is None:
            yield
            return
        key = f"machine:{machine_id}"
        lock = self._turns.get(key)
        if lock is None:
            lock = self._turns[key] = asyncio.Lock()
        async with lock:
            yield

    def charges(
        self, client_id: str, source: str, machine_id: str | None, live_codes: int
    ) -> list[Charge]:
        lim = self.limits
        mine = Charge(f"client:{client_id}", lim.client)
        if machine_id is None:
            return [
                mine,
                Charge(FLEET_CODE_ONLY, lim.code_only),
                Charge(f"source:{source_key(source)}", lim.source, float(max(1, live_codes))),
            ]
        return [
            mine,
            Charge(f"machine:{machine_id}", lim.machine),
            Charge(f"source:{source_key(source)}", lim.source),
        ]

    async def admit(
        self, client_id: str, source: str, machine_id: str | None, live_codes: int, now: float
    ) -> list[Charge]:
        """Spend a guess's budgets, or raise why it may not be tried now."""
        charges = self.charges(client_id, source, machine_id, live_codes)
        refusal = await self.store.take(charges, now)
        if refusal is not None:
            raise self._refused(refusal, machine_id is None)
        return charges

    async def admit_in_turn(
        self,
        client_id: str,
        source: str,
        machine_id: str | None,
        live_codes: int,
        clock: Callable[[], int],
    ) -> tuple[list[Charge], int]:
        """``admit``, but a budget that only guesses still in flight keep from paying
        is waited for instead of refusing. Returns the charges and when they were
        spent; every guess admitted here must be ``settle``d."""
        charges = self.charges(client_id, source, machine_id, live_codes)
        while True:
            settled = self._settled
            if self._crowded(charges):  # the take could not pay: wait without asking
                await settled.wait()
                continue
            self._hold(charges)  # before asking: concurrent takes see it
            try:
                now = clock()
                refusal = await self.store.take(charges, now)
            except BaseException:
                self._release(charges)
                raise
            if refusal is None:
                return charges, now
            self._release(charges)
            if not self._held.get(refusal.charge.key):
                raise self._refused(refusal, machine_id is None)
            await self._settled.wait()  # until another guess in flight is settled

    def _hold(self, charges: Sequence[Charge]) -> None:
        for charge in charges:
            self._held[charge.key] = self._held.get(charge.key, 0.0) + charge.cost

    def _release(self, charges: Sequence[Charge]) -> None:
        for charge in charges:
            left = self._held.get(charge.key, 0.0) - charge.cost
            if left > 1e-9:
                self._held[charge.key] = left
            else:
                self._held.pop(charge.key, None)
        settled, self._settled = self._settled, asyncio.Event()
        settled.set()

    def _crowded(self, charges: Sequence[Charge]) -> bool:
        """A budget that guesses in flight already fill past what this one needs."""
        return any(
            self._held.get(c.key, 0.0) + c.cost > c.rate.capacity
            for c in charges
            if self._held.get(c.key)
        )

    async def settle(self, charges: Sequence[Charge], now: float, *, right: bool) -> None:
        """A guess from ``admit_in_turn`` is over: a right one (or one whose answer said
        nothing about the code) gives its budgets back; a failure leaves them spent."""
        try:
            if right:
                await self.right(charges, now)
        finally:
            self._release(charges)

    async def right(self, charges: Sequence[Charge], now: float) -> None:
        """The guess was not a failure: give its budgets back.

        A code-only guess is only called right when its code was on a display (the
        lock path raises ``InvalidCode`` otherwise): it earns the fleet's code-only
        budget a token, while the credit allowance lasts."""
        fleet = next((c for c in charges if c.key == FLEET_CODE_ONLY), None)
        if fleet is not None:
            credit = Charge("fleet:code-only-credit", CODE_ONLY_CREDIT)
            if await self.store.take([credit], now) is None:
                charges = [*charges, fleet]  # one more token back than it paid
        await self.store.give_back(charges, now)

    @staticmethod
    def _refused(refusal: Refusal, code_only: bool) -> Exception:
        scope = refusal.charge.key.partition(":")[0]
        if scope == "client":
            wait = retry_after(refusal.wait_s)
            return RateLimited(f"too many wrong codes; try again in {wait} s", retry_after=wait)
        if code_only:
            return MachineRequired(
                "many wrong codes were typed lately: open the page of the machine you are "
                "at (scan its QR code or pick it from the list) and enter the code there"
            )
        wait = retry_after(refusal.wait_s)
        if scope == "machine":
            message = f"many wrong codes were tried on this machine; try again in {wait} s"
        else:
            message = f"many wrong codes came from your network; try again in {wait} s"
        return RateLimited(message, retry_after=wait)

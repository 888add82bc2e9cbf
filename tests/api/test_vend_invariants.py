"""The vend rules hold whatever shoppers, payments, devices and the clock do.

A hypothesis state machine drives the real services over SQLite: many
shoppers guessing codes and locking, orders, payments verified by the browser
and by webhooks (repeated), second payments, device results in any order
(duplicates, ``unknown``, partial counts), machines dropping off, restocks,
and the clock jumping.  After every step the invariants are checked against
the database.
"""

import asyncio
import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.clock import FakeClock
from api.errors import InvalidRequest, SmartVendError
from api.infra.db import create_engine, session_factory
from api.payments.base import GatewayPayment
from api.payments.test_gateway import TestGateway
from api.security import ids
from api.server.runtime import build_services
from api.services.machines import NewMachine
from api.services.policy import VendPolicy
from schema.models import (
    FINAL_COMMAND_STATES,
    Base,
    Command,
    Machine,
    Order,
    Payment,
    Refund,
    VendSession,
)

MACHINES = ("m1", "m2")
CLIENTS = ("shopper-a", "shopper-b", "shopper-c")
START_STOCK = 6
POLICY = VendPolicy(
    display_code_ttl_s=120,
    lock_ttl_s=60,
    command_ttl_s=30,
    unit_run_s=5,
    max_quantity=3,
    code_failure_budget=4,
    client_failure_limit=1000,
    source_failure_limit=1000,
)
RESULT_STATES = ("accepted", "running", "succeeded", "failed", "rejected", "expired", "unknown")
SETTLE_S = 10_000


class VendMachine(RuleBasedStateMachine):
    sessions = Bundle("sessions")
    orders = Bundle("orders")
    proofs = Bundle("proofs")

    def __init__(self) -> None:
        super().__init__()
        self.saved_rng = ids.rng
        ids.rng = random.Random(1234)  # replayable codes and ids
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.gateway = TestGateway("state-machine-secret")
        self.engine = create_engine("sqlite+aiosqlite:///:memory:")
        self.services = build_services(
            session_factory(self.engine), self.clock, POLICY, self.gateway
        )
        self.restocked: dict[str, int] = defaultdict(int)
        self.open_orders: dict[str, str] = {}  # session -> its newest unpaid order
        self.superseded: set[str] = set()  # orders replaced before anyone paid them
        self.boot: dict[str, int] = defaultdict(int)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def attempt(self, coro: Any) -> Any:
        """Run a service call; refusals are part of the game, anything else is a bug."""
        try:
            return self.run(coro)
        except SmartVendError:
            return None

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()
        ids.rng = self.saved_rng

    @initialize()
    def fleet(self) -> None:
        async def setup() -> None:
            async with self.engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            for mid in MACHINES:
                await self.services.machines.register(
                    NewMachine(
                        machine_id=mid, name=mid, price_amount=1500, capacity=10, stock=START_STOCK
                    )
                )
                await self.services.machines.apply_status(mid, {"state": "online", "boot": 1})
                self.boot[mid] = 1

        self.run(setup())

    async def _code(self, mid: str) -> str | None:
        async with self.services.ctx.db.begin() as s:
            return await s.scalar(select(Machine.display_code).where(Machine.id == mid))

    # -- shoppers -----------------------------------------------------------

    @rule(
        target=sessions,
        mid=st.sampled_from(MACHINES),
        client=st.sampled_from(CLIENTS),
        by_id=st.booleans(),
    )
    def lock_with_displayed_code(self, mid: str, client: str, by_id: bool) -> Any:
        code = self.run(self._code(mid)) or "000000"
        lock = self.attempt(
            self.services.locks.lock_by_code(
                code, client, mid if by_id else None, source="10.0.0.1"
            )
        )
        return (lock.session_id, client) if lock else ("ses_none", client)

    @rule(
        mid=st.sampled_from(MACHINES),
        client=st.sampled_from(CLIENTS),
        guess=st.text(alphabet="0123456789", min_size=0, max_size=7),
    )
    def guess_code(self, mid: str, client: str, guess: str) -> None:
        self.attempt(self.services.locks.lock_by_code(guess, client, mid, source="10.0.0.2"))

    @rule(target=orders, session=sessions, quantity=st.integers(1, 4))
    def create_order(self, session: tuple[str, str], quantity: int) -> Any:
        session_id, client = session
        created = self.attempt(self.services.orders.create(session_id, client, quantity))
        if created is None:
            return "order_none"
        previous = self.open_orders.get(session_id)
        if previous is not None and not self.run(self._has_payment(previous)):
            self.superseded.add(previous)
        self.open_orders[session_id] = created.order_id
        return created.gateway_order_id

    async def _has_payment(self, order_id: str) -> bool:
        async with self.services.ctx.db.begin() as s:
            found = await s.scalar(select(Payment.id).where(Payment.order_id == order_id))
            return found is not None

    @rule(gateway_order=orders)
    def pay_and_verify(self, gateway_order: str) -> None:
        self.verify_in_browser(self._checkout(gateway_order))

    @rule(session=consumes(sessions))
    def unlock(self, session: tuple[str, str]) -> None:
        session_id, client = session

        async def go() -> None:
            async with self.services.ctx.db.begin() as s:
                row = await s.get(VendSession, session_id)
            if row is not None:
                await self.services.locks.unlock(row.machine_id, client, session_id)

        self.attempt(go())

    # -- payments -----------------------------------------------------------

    def _checkout(self, gateway_order: str) -> dict[str, str]:
        """The shopper pays at the gateway (once per order, as Razorpay allows)."""
        if gateway_order == "order_none":
            return {}
        try:
            return self.gateway.complete_payment(gateway_order)
        except InvalidRequest:  # already paid
            return {}

    @rule(target=proofs, gateway_order=orders)
    def pay(self, gateway_order: str) -> Any:
        return self._checkout(gateway_order)

    @rule(proof=proofs)
    def verify_in_browser(self, proof: dict[str, str]) -> None:
        if proof:
            self.attempt(
                self.services.orders.verify(
                    proof["razorpay_order_id"],
                    proof["razorpay_payment_id"],
                    proof["razorpay_signature"],
                )
            )

    @rule(proof=proofs)
    def webhook(self, proof: dict[str, str]) -> None:
        if proof:
            payment: GatewayPayment = self.run(
                self.gateway.fetch_payment(proof["razorpay_payment_id"])
            )
            self.attempt(self.services.orders.record_payment(payment, via="webhook"))

    @rule(proof=proofs)
    def forged_signature(self, proof: dict[str, str]) -> None:
        if proof:
            self.attempt(
                self.services.orders.verify(
                    proof["razorpay_order_id"], proof["razorpay_payment_id"], "0" * 64
                )
            )

    # -- devices ------------------------------------------------------------

    @rule(data=st.data(), status=st.sampled_from(RESULT_STATES), dispensed=st.integers(0, 4))
    def device_result(self, data: st.DataObject, status: str, dispensed: int) -> None:
        async def commands() -> list[tuple[str, str]]:
            async with self.services.ctx.db.begin() as s:
                rows = await s.execute(select(Command.id, Command.machine_id).order_by(Command.id))
                return [(r[0], r[1]) for r in rows]

        known = self.run(commands())
        if not known:
            return
        cmd_id, mid = data.draw(st.sampled_from(known))
        self.run(self.services.dispense.apply_result(mid, cmd_id, status, dispensed))

    @rule(mid=st.sampled_from(MACHINES), online=st.booleans(), stale=st.booleans())
    def presence(self, mid: str, online: bool, stale: bool) -> None:
        if not stale:
            self.boot[mid] += 1
        boot = self.boot[mid] - 1 if stale else self.boot[mid]
        msg = {"state": "online" if online else "lost", "boot": boot}
        self.run(self.services.machines.apply_status(mid, msg))

    @rule(mid=st.sampled_from(MACHINES), stock=st.integers(0, 10))
    def restock(self, mid: str, stock: int) -> None:
        async def go() -> None:
            async with self.services.ctx.db.begin() as s:
                before = await s.scalar(select(Machine.stock).where(Machine.id == mid))
            assert before is not None
            await self.services.machines.set_stock(mid, stock)
            self.restocked[mid] += stock - before

        self.attempt(go())

    # -- time ---------------------------------------------------------------

    @rule(seconds=st.sampled_from((1, 5, 29, 31, 61, 121, 400)))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.run(self.services.sweeper.tick())

    @rule()
    def refunds_go_out(self) -> None:
        self.run(self.services.refunds.process_pending())

    # -- invariants ---------------------------------------------------------

    @invariant()
    def vend_rules_hold(self) -> None:
        """Every rule, checked in one read of the database after each step."""

        async def check() -> None:
            async with self.services.ctx.db.begin() as s:
                await self.one_lock_per_machine_and_no_code_while_locked(s)
                await self.one_command_per_order_and_only_for_paid_orders(s)
                await self.replaced_orders_never_dispense(s)
                await self.one_vend_at_a_time_per_machine(s)
                await self.stock_adds_up(s)
                await self.refunds_equal_what_was_not_dispensed(s)

        self.run(check())

    async def one_lock_per_machine_and_no_code_while_locked(self, s: AsyncSession) -> None:
        rows = await s.execute(
            select(VendSession.machine_id, func.count())
            .where(VendSession.status == "active")
            .group_by(VendSession.machine_id)
        )
        for mid, count in rows:
            assert count == 1, f"{mid} has {count} active locks"
            machine = await s.get(Machine, mid)
            assert machine is not None and machine.display_code is None

    async def one_command_per_order_and_only_for_paid_orders(self, s: AsyncSession) -> None:
        rows = await s.execute(select(Command.order_id, func.count()).group_by(Command.order_id))
        for order_id, count in rows:
            assert count == 1, f"order {order_id} has {count} commands"
            paid = await s.scalar(
                select(func.count())
                .select_from(Payment)
                .where(
                    Payment.order_id == order_id,
                    Payment.disposition == "counted",
                    Payment.amount
                    == select(Order.amount).where(Order.id == order_id).scalar_subquery(),
                )
            )
            assert paid == 1, f"order {order_id} dispatched without its payment"

    async def replaced_orders_never_dispense(self, s: AsyncSession) -> None:
        dispatched = set((await s.scalars(select(Command.order_id))).all())
        assert not dispatched & self.superseded

    async def one_vend_at_a_time_per_machine(self, s: AsyncSession) -> None:
        rows = await s.execute(
            select(Command.machine_id, func.count())
            .where(Command.status.not_in(FINAL_COMMAND_STATES))
            .group_by(Command.machine_id)
        )
        for mid, count in rows:
            assert count == 1, f"{mid} runs {count} commands at once"

    async def stock_adds_up(self, s: AsyncSession) -> None:
        for mid in MACHINES:
            machine = await s.get(Machine, mid)
            assert machine is not None
            out = await s.scalar(
                select(func.coalesce(func.sum(Command.dispensed), 0)).where(
                    Command.machine_id == mid, Command.status.in_(FINAL_COMMAND_STATES)
                )
            )
            assert machine.stock >= 0
            assert machine.stock == START_STOCK + self.restocked[mid] - out, mid

    async def refunds_equal_what_was_not_dispensed(self, s: AsyncSession) -> None:
        rows = await s.execute(
            select(Order, Refund)
            .join(Payment, Payment.order_id == Order.id)
            .join(Refund, Refund.payment_id == Payment.id)
            .where(Payment.disposition == "counted")
        )
        for order, refund in rows:
            assert refund.amount == order.amount - order.dispensed * order.unit_amount

    def check_settled(self) -> None:
        """Once every deadline has passed, every paid order has ended properly."""

        async def settle() -> None:
            self.clock.advance(SETTLE_S)
            await self.services.sweeper.tick()
            await self.services.refunds.process_pending()
            async with self.services.ctx.db.begin() as s:
                rows = await s.execute(
                    select(Order, Payment).join(Payment, Payment.order_id == Order.id)
                )
                for order, payment in rows:
                    refund = await s.scalar(select(Refund).where(Refund.payment_id == payment.id))
                    if payment.disposition == "extra":
                        assert refund is not None and refund.amount == payment.amount
                        continue
                    assert order.status in ("dispensed", "refunded"), order.status
                    owed = order.amount - order.dispensed * order.unit_amount
                    if owed == 0:
                        assert refund is None and order.status == "dispensed"
                    else:
                        assert refund is not None and refund.amount == owed
                        assert refund.status == "processed"
                unfinished = await s.scalar(
                    select(func.count())
                    .select_from(Command)
                    .where(Command.status.not_in(FINAL_COMMAND_STATES))
                )
                assert unfinished == 0

        self.run(settle())

    @rule()
    def everything_settles(self) -> None:
        self.check_settled()


TestVendInvariants = VendMachine.TestCase
# 200 examples of up to 30 steps: minutes on a loaded 2-core machine, more while shrinking.
TestVendInvariants.pytestmark = [pytest.mark.timeout(1500)]

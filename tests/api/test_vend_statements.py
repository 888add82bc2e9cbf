"""A payment found waiting and a machine's progress reports are written by statements
(``vend_writer.dispatch_paid``, ``vend_writer.progress``); every other event by the ORM
writer. Both must leave the same rows and messages."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from api.clock import FakeClock
from api.lifecycle import vend
from api.lifecycle.states import CommandStatus
from api.payments.test_gateway import TestGateway
from api.services import vend_writer
from api.services.catalogue import ProductFields
from api.services.container import Services
from api.services.machines import NewMachine
from api.services.slots import SlotPlan
from api.settings import Settings
from schema import topics
from schema.models import (
    Command,
    Machine,
    Order,
    OrderLine,
    OutboxMessage,
    Payment,
    VendSession,
)
from tests.support.services import built_services

pytest_plugins = ["tests.support.db_fixtures"]

CLIENT = "client-0001"


@pytest.fixture
async def services(migrated_url: str) -> AsyncIterator[Services]:
    url = Settings(database_url=migrated_url).async_database_url
    async with built_services(url, FakeClock(), TestGateway("test-secret")) as built:
        yield built


def _spied(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Replace the writer's ``name`` by itself, noting the id of the vend it writes."""
    seen: list[str] = []
    write = getattr(vend_writer, name)

    async def spy(s: Any, rows: Any, outcome: Any, now: int) -> None:
        seen.append((rows.command or rows.order).id)
        await write(s, rows, outcome, now)

    monkeypatch.setattr(vend_writer, name, spy)
    return seen


async def _machine(services: Services, machine_id: str, slots: bool) -> str:
    await services.machines.register(
        NewMachine(machine_id=machine_id, name="Lobby", price_amount=2500, capacity=10, stock=5)
    )
    if slots:
        products = [
            (await services.catalogue.create(ProductFields(name=name, price_amount=price)))["id"]
            for name, price in (("Cola", 2000), ("Chips", 1500))
        ]
        version = (await services.slots.get(machine_id))["version"]
        plan = [
            SlotPlan(slot, motor, product, 10, 8, stock=6)
            for slot, motor, product in (("A1", 0, products[0]), ("B2", 3, products[1]))
        ]
        await services.slots.put(machine_id, version, plan)
    await services.machines.apply_status(machine_id, {"state": "online", "boot": 1})
    async with services.ctx.db() as s:
        code = await s.scalar(select(Machine.display_code).where(Machine.id == machine_id))
    assert code is not None
    return code


async def _pay(
    services: Services, gateway: TestGateway, machine_id: str, slots: bool, *, run: bool = False
) -> Any:
    code = await _machine(services, machine_id, slots)
    lock = await services.locks.lock_by_code(code, CLIENT)
    if slots:
        items = [{"slot": "A1", "quantity": 2}, {"slot": "B2", "quantity": 1}]
        created = await services.orders.create(lock.session_id, CLIENT, None, items)
    else:
        created = await services.orders.create(lock.session_id, CLIENT, 2)
    async with services.ctx.db() as s:
        written_before = await s.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()))
    proof = gateway.complete_payment(created.gateway_order_id)
    order = await services.orders.verify(
        proof["razorpay_order_id"], proof["razorpay_payment_id"], proof["razorpay_signature"]
    )
    assert order.status == "paid"
    lines: list[tuple[int, ...]] = []
    if run:
        async with services.ctx.db() as s:
            cmd_id = await s.scalar(select(Command.id).where(Command.order_id == order.id))
        assert cmd_id is not None
        counts = [{"slot": "A1", "dispensed": 1}, {"slot": "B2", "dispensed": 0}]
        for status, out, per_line in (
            (CommandStatus.ACCEPTED, 0, None),
            (CommandStatus.ACCEPTED, 0, None),  # again: nothing moves
            (CommandStatus.RUNNING, 1, counts if slots else None),
        ):
            await services.dispense.apply_result(machine_id, cmd_id, status, out, lines=per_line)
        async with services.ctx.db() as s:
            found = await s.scalars(
                select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.position)
            )
            lines = [(line.position, line.quantity, line.dispensed) for line in found]
    async with services.ctx.db() as s:
        row = await s.get(Order, order.id)
        command = await s.scalar(select(Command).where(Command.order_id == order.id))
        payment = await s.scalar(select(Payment).where(Payment.order_id == order.id))
        session = await s.get(VendSession, lock.session_id)
        machine = await s.get(Machine, machine_id)
        assert row and command and payment and session and machine
        outbox = (
            await s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.id > (written_before or 0))
                .order_by(OutboxMessage.id)
            )
        ).all()
    ids = {
        order.id: "ORDER",
        command.id: "COMMAND",
        lock.session_id: "LOCK",
        machine_id: "MACHINE",
        payment.id: "PAYMENT",
    }
    if machine.display_code:
        ids[machine.display_code] = "CODE"

    def named(text: str) -> str:
        for value, name in ids.items():
            text = text.replace(value, name)
        return text

    return {
        "order": (row.status, row.paid_at, row.updated_at, row.dispensed, row.amount),
        "command": (
            command.status,
            command.quantity,
            command.dispensed,
            command.issued_at,
            command.expires_at,
            command.deadline,
            command.accepted_at,
            command.finished_at,
            command.error,
        ),
        "payment": (
            payment.amount,
            payment.currency,
            payment.disposition,
            payment.verified_via,
            payment.created_at,
        ),
        "lock": (session.status, session.expires_at - session.created_at),
        "desired_version": machine.desired_version,
        "lines": lines,
        "outbox": [
            (named(m.topic), named(bytes(m.payload).decode()), m.retain, m.qos) for m in outbox
        ],
    }


@pytest.mark.parametrize("slots", [False, True], ids=["one-slot", "two-line cart"])
@pytest.mark.parametrize("run", [False, True], ids=["paid", "paid and running"])
async def test_statements_write_what_the_orm_writer_writes(
    services: Services, monkeypatch: pytest.MonkeyPatch, slots: bool, run: bool
) -> None:
    gateway = services.orders.gateway
    assert isinstance(gateway, TestGateway)
    with monkeypatch.context() as patched:
        paid, reports = _spied(patched, "dispatch_paid"), _spied(patched, "progress")
        fast = await _pay(services, gateway, "m-fast", slots, run=run)
    assert (len(paid), len(reports)) == (1, 3 if run else 0)
    with monkeypatch.context() as patched:  # the payment and every report the ORM way
        patched.setattr(vend_writer, "dispatches", lambda _outcome: False)
        patched.setattr(vend, "settles", lambda _status: True)
        orm = await _pay(services, gateway, "m-orm", slots, run=run)
    assert fast == orm
    assert [topic for topic, *_ in fast["outbox"]] == [
        topics.cmd("MACHINE", "COMMAND"),
        topics.desired("MACHINE"),
        topics.state("MACHINE"),
    ]
    if run:
        assert fast["command"][:3] == ("running", 2 if not slots else 3, 1)
        assert fast["order"][0] == "dispensing"
        assert fast["lines"] == ([(0, 2, 1), (1, 1, 0)] if slots else [(0, 2, 1)])

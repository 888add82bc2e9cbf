"""A whole vend through the services, and the ways it can go wrong."""

from sqlalchemy import func, select

from api.clock import FakeClock
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from api.services.machines import NewMachine
from schema import messages, topics
from schema.models import Command, Machine, OutboxMessage
from tests.support.services import unfinished_commands

CLIENT = "client-0001"


async def online_machine(services: Services, mid: str = "m1", stock: int = 5) -> Machine:
    _, key = await services.machines.register(
        NewMachine(machine_id=mid, name="Lobby", price_amount=2500, capacity=10, stock=stock)
    )
    assert key.startswith("svk_")
    await services.machines.apply_status(mid, {"state": "online", "boot": 1})
    async with services.ctx.db.begin() as s:
        found = await s.get(Machine, mid)
        assert found is not None
        return found


async def test_vend_dispenses_once_and_rotates_code(
    services: Services, gateway: TestGateway, clock: FakeClock
) -> None:
    machine = await online_machine(services)
    code = machine.display_code
    assert code is not None and len(code) == 6
    lock = await services.locks.lock_by_code(code, CLIENT)
    assert lock.machine_id == "m1"
    created = await services.orders.create(lock.session_id, CLIENT, 2)
    assert created.amount == 5000
    proof = gateway.complete_payment(created.gateway_order_id)
    order = await services.orders.verify(
        proof["razorpay_order_id"], proof["razorpay_payment_id"], proof["razorpay_signature"]
    )
    assert order.status == "paid"
    again = await services.orders.verify(
        proof["razorpay_order_id"], proof["razorpay_payment_id"], proof["razorpay_signature"]
    )
    assert again.id == order.id
    async with services.ctx.db.begin() as s:
        commands = (await s.scalars(select(Command))).all()
        assert len(commands) == 1
        cmd = commands[0]
        sent = await s.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic == topics.cmd("m1", cmd.id))
        )
        assert sent == 1
    assert await services.dispense.apply_result("m1", cmd.id, "accepted", 0)
    assert await services.dispense.apply_result("m1", cmd.id, "succeeded", 2)
    assert not await services.dispense.apply_result("m1", cmd.id, "succeeded", 2)
    view = await services.orders.view(order.id)
    assert view["status"] == "dispensed" and view["dispensed"] == 2 and view["refund"] is None
    async with services.ctx.db.begin() as s:
        after = await s.get(Machine, "m1")
        assert after is not None
        assert after.stock == 3
        assert after.display_code not in (None, code)
        last = (
            await s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.topic == topics.desired("m1"))
                .order_by(OutboxMessage.id.desc())
            )
        ).first()
        assert last is not None
        desired = messages.decode("desired", last.payload)
        assert desired["lock"] is None and desired["display"]["code"] == after.display_code


async def test_partial_dispense_refunds_the_rest(services: Services, gateway: TestGateway) -> None:
    machine = await online_machine(services)
    assert machine.display_code is not None
    lock = await services.locks.lock_by_code(machine.display_code, CLIENT)
    created = await services.orders.create(lock.session_id, CLIENT, 3)
    proof = gateway.complete_payment(created.gateway_order_id)
    await services.orders.verify(*proof.values())
    cmd = (await unfinished_commands(services))[0]
    await services.dispense.apply_result("m1", cmd.id, "failed", 1, "jam")
    view = await services.orders.view(created.order_id)
    assert view["status"] == "refund_pending"
    assert view["refund"] == {"amount": 5000, "status": "pending"}
    assert await services.refunds.process_pending() == 1
    view = await services.orders.view(created.order_id)
    assert view["status"] == "refunded" and view["dispensed"] == 1

"""The test gateway keeps its payments in the database: refunds work after a restart."""

from pathlib import Path

import pytest

from api.errors import GatewayError
from api.infra.db import create_engine, session_factory
from api.payments.test_gateway import TestGateway
from api.payments.test_gateway_records import DatabaseRecords
from schema.models import Base

SECRET = "test-gateway-secret"


async def test_a_payment_is_refunded_by_the_next_process(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        db = session_factory(engine)
        before = TestGateway(SECRET, DatabaseRecords(db))
        order = await before.create_order(amount=5000, currency="INR", receipt="o-1", notes={})
        proof = await before.checkout(order.id)
        payment_id = proof["razorpay_payment_id"]
        first = await before.refund(
            payment_id=payment_id, amount=2000, idempotency_key="rf-1", notes={}
        )

        after = TestGateway(SECRET, DatabaseRecords(db))  # the server restarted
        assert [p.id for p in await after.payments_for_order(order.id)] == [payment_id]
        again = await after.refund(
            payment_id=payment_id, amount=2000, idempotency_key="rf-1", notes={}
        )
        assert again == first  # the same key never refunds twice, across restarts
        rest = await after.refund(
            payment_id=payment_id, amount=3000, idempotency_key="rf-2", notes={}
        )
        assert rest.status == "processed"
        assert (await after.fetch_payment(payment_id)).status == "refunded"
        assert await after.fetch_refund(payment_id=payment_id, refund_id=first.id) == first
        with pytest.raises(GatewayError, match="greater than the amount left"):
            await TestGateway(SECRET, DatabaseRecords(db)).refund(
                payment_id=payment_id, amount=1, idempotency_key="rf-3", notes={}
            )
    finally:
        await engine.dispose()

"""Prepared statements on the driver's connection (``api.infra.prepared``), on SQLite and
PostgreSQL: the same values SQLAlchemy would give, the session's transaction, and
SQLAlchemy's errors."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.infra.db import Database, create_engine, session_factory
from api.infra.prepared import Prepared
from api.settings import async_database_url
from schema.models import Machine, table
from tests.support.databases import migrate_async

pytest_plugins = ["tests.support.db_fixtures"]

MACHINES = table(Machine)
SLOTS = [{"id": "A1", "price": {"amount": 2500, "currency": "INR"}, "enabled": True}]
_ADD = Prepared(
    insert(MACHINES).values(
        id=bindparam("m_id"),
        name="Lobby",
        api_key_hash="x",
        key_revoked=False,
        price_amount=2500,
        currency="INR",
        capacity=10,
        stock=bindparam("m_stock"),
        restocked_total=0,
        dispensed_total=0,
        mode="in_service",
        code_failures=0,
        desired_version=0,
        online=bindparam("m_online"),
        boot=0,
        low_stock_alerted=False,
        offline_alerted=False,
        created_at=1,
        simulated=False,
        planogram_version=0,
        desired_slots=bindparam("m_slots"),
    )
)
_READ = Prepared(
    select(MACHINES.c.id, MACHINES.c.online, MACHINES.c.desired_slots, MACHINES.c.stock).where(
        MACHINES.c.id == bindparam("mid")
    )
)
_BUMP = Prepared(
    update(MACHINES)
    .where(MACHINES.c.id == bindparam("mid"))
    .values(stock=MACHINES.c.stock + 1)
    .returning(MACHINES.c.stock)
)


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    engine = create_engine(async_database_url(migrated_url))
    try:
        factory = session_factory(engine)
        assert isinstance(factory, Database)
        yield factory
    finally:
        await engine.dispose()


async def test_values_are_converted_as_sqlalchemy_would(db: Database) -> None:
    params = {"m_id": "m-1", "m_stock": 3, "m_online": True, "m_slots": SLOTS}
    async with db.begin() as s:
        await _ADD.all(s, params)
        assert await _BUMP.scalar(s, {"mid": "m-1"}) == 4
        row = await _READ.first(s, {"mid": "m-1"})
    assert row == {"id": "m-1", "online": True, "desired_slots": SLOTS, "stock": 4}
    async with db() as s:  # a read outside the writer's turn
        assert await _READ.first(s, {"mid": "m-1"}) == row
        assert await _READ.first(s, {"mid": "nobody"}) is None
        orm = await s.get(Machine, "m-1")
    assert orm is not None and orm.desired_slots == SLOTS and orm.online is True


async def test_it_runs_in_the_sessions_transaction(db: Database) -> None:
    params = {"m_id": "m-1", "m_stock": 3, "m_online": False, "m_slots": None}
    with pytest.raises(RuntimeError):
        async with db.begin() as s:
            await _ADD.all(s, params)
            raise RuntimeError("the unit of work fails after the insert")
    async with db() as s:
        assert await _READ.first(s, {"mid": "m-1"}) is None


async def test_driver_errors_are_sqlalchemys(db: Database) -> None:
    params = {"m_id": "m-1", "m_stock": 3, "m_online": False, "m_slots": None}
    async with db.begin() as s:
        await _ADD.all(s, params)
    with pytest.raises(IntegrityError) as raised:
        async with db.begin() as s:
            await _ADD.all(s, params)
    assert "m-1" in str(raised.value.params)
    with pytest.raises(IntegrityError):  # a check constraint: stock within capacity
        async with db.begin() as s:
            await _ADD.all(s, {**params, "m_id": "m-2", "m_stock": 11})
    async with db.begin() as s:  # the pool hands out a working connection afterwards
        assert await _BUMP.scalar(s, {"mid": "m-1"}) == 4


async def test_it_can_be_the_first_statement_of_a_postgresql_transaction(
    postgresql_url: str,
) -> None:
    """The driver's adapter begins its transaction lazily: a prepared statement first in a
    unit of work must still be inside it (a rollback takes it back)."""
    await migrate_async(postgresql_url)
    engine = create_engine(async_database_url(postgresql_url))
    try:
        db = session_factory(engine)
        params = {"m_id": "m-1", "m_stock": 3, "m_online": False, "m_slots": None}
        async with db.begin() as s:
            await _ADD.all(s, params)
        with pytest.raises(RuntimeError):
            async with db.begin() as s:
                await _BUMP.scalar(s, {"mid": "m-1"})
                raise RuntimeError("rolled back")
        async with db() as s:
            assert (await _READ.first(s, {"mid": "m-1"}) or {})["stock"] == 3
    finally:
        await engine.dispose()

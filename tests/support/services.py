"""Services over a fresh database built from the models, for service-level tests, and the
fixtures most of them share (``clock``, ``gateway``, ``services``; tests/conftest.py loads them)."""

import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from api.clock import Clock, FakeClock
from api.infra.db import create_engine, session_factory
from api.payments.base import PaymentGateway
from api.payments.test_gateway import TestGateway
from api.server.runtime import build_services
from api.services.container import Services
from api.services.dispense import UNFINISHED
from api.services.policy import VendPolicy
from schema.models import Base, Command


@contextlib.asynccontextmanager
async def built_services(
    url: str, clock: Clock, gateway: PaymentGateway, policy: VendPolicy | None = None
) -> AsyncIterator[Services]:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield build_services(session_factory(engine), clock, policy or VendPolicy(), gateway)
    finally:
        await engine.dispose()


async def unfinished_commands(services: Services) -> list[Command]:
    """Commands with no final result yet (what a test's machine has still to answer)."""
    async with services.ctx.db() as s:
        return list((await s.scalars(select(Command).where(UNFINISHED))).all())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gateway() -> TestGateway:
    return TestGateway("test-secret")


@pytest.fixture
async def services(clock: FakeClock, gateway: TestGateway) -> AsyncIterator[Services]:
    """Services over a fresh in-memory SQLite database, the fake clock and the test gateway
    (a test folder's conftest may build them otherwise under the same name)."""
    async with built_services("sqlite+aiosqlite:///:memory:", clock, gateway) as built:
        yield built

"""Services over a fresh in-memory SQLite database, a fake clock and the test gateway."""

from collections.abc import AsyncIterator

import pytest

from api.clock import FakeClock
from api.db import create_engine, session_factory
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from api.services.policy import VendPolicy
from schema.models import Base


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gateway() -> TestGateway:
    return TestGateway("test-secret")


@pytest.fixture
async def services(clock: FakeClock, gateway: TestGateway) -> AsyncIterator[Services]:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield Services.build(session_factory(engine), clock, VendPolicy(), gateway)
    await engine.dispose()

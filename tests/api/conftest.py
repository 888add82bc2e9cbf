"""Services over a fresh in-memory SQLite database, a fake clock and the test gateway."""

from collections.abc import AsyncIterator

import pytest

from api.clock import FakeClock
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from tests.support.services import built_services


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gateway() -> TestGateway:
    return TestGateway("test-secret")


@pytest.fixture
async def services(clock: FakeClock, gateway: TestGateway) -> AsyncIterator[Services]:
    async with built_services("sqlite+aiosqlite:///:memory:", clock, gateway) as built:
        yield built

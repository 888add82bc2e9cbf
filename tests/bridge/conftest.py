"""Services over a fresh SQLite file per test, and the embedded broker asking the database."""

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.accounts import SERVER_USERNAME, DatabaseAuthenticator
from api.clock import FakeClock
from api.db import create_engine, session_factory
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from api.services.policy import VendPolicy
from broker.embedded import EmbeddedBroker
from broker.passwords import hash_secret
from schema.models import Base
from tests.support.brokers import running_embedded


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gateway() -> TestGateway:
    return TestGateway("test-secret")


@pytest.fixture
async def services(
    tmp_path: Path, clock: FakeClock, gateway: TestGateway
) -> AsyncIterator[Services]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'smartvend.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield Services.build(session_factory(engine), clock, VendPolicy(), gateway)
    await engine.dispose()


@pytest.fixture
def server_password() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture
def authenticator(services: Services, server_password: str) -> DatabaseAuthenticator:
    return DatabaseAuthenticator(services.ctx.db, SERVER_USERNAME, hash_secret(server_password))


@pytest.fixture
async def embedded(authenticator: DatabaseAuthenticator) -> AsyncIterator[EmbeddedBroker]:
    async with running_embedded(authenticator) as broker:
        yield broker

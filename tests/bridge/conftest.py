"""Services over a fresh SQLite file per test, and the embedded broker asking the database."""

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.clock import FakeClock
from api.mqtt.accounts import SERVER_USERNAME, DatabaseAuthenticator
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from broker.embedded import EmbeddedBroker
from broker.passwords import hash_secret
from tests.support.brokers import running_embedded
from tests.support.services import built_services


@pytest.fixture
async def services(
    tmp_path: Path, clock: FakeClock, gateway: TestGateway
) -> AsyncIterator[Services]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'smartvend.db'}"
    async with built_services(url, clock, gateway) as built:
        yield built


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

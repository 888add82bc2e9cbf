"""Database fixtures; a test module opts in with ``pytest_plugins = ["tests.support.db_fixtures"]``.

``pg_server`` is one private PostgreSQL for the whole run; ``postgresql_url``
and ``sqlite_url`` give each test a fresh, empty database; ``database_url`` runs
a test once on each (ids ``sqlite`` and ``postgresql``).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import databases

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[databases.PostgresServer]:
    with databases.postgres_server() as server:
        yield server


@pytest.fixture
def postgresql_url(pg_server: databases.PostgresServer) -> Iterator[str]:
    with pg_server.fresh_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return databases.sqlite_url(tmp_path)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database of each kind, as a plain synchronous URL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """``database_url`` brought to the head revision."""
    await databases.migrate_async(database_url)
    return database_url

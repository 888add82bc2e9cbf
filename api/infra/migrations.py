"""Running Alembic from code: ``smartvend migrate``, the schema check and the tests."""

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from api.errors import ConfigurationError
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(async_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = async_url
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings.async_database_url), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings.async_database_url), revision)


def head_revision() -> str | None:
    """The newest revision the code knows."""
    config = Config()
    config.set_main_option("script_location", str(ROOT / "alembic"))
    return ScriptDirectory.from_config(config).get_current_head()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def require_head(engine: AsyncEngine) -> None:
    """Raise ConfigurationError unless the database is migrated to the newest revision."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current)
    head = head_revision()
    if current != head:
        where = "has no SmartVend schema" if current is None else f"is at revision {current}"
        raise ConfigurationError(
            f"the database {where}, the code needs {head}: run `smartvend migrate` first"
        )

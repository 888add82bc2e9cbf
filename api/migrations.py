"""Running Alembic from code: ``smartvend migrate`` and the tests."""

from pathlib import Path

from alembic.config import Config

from alembic import command
from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(async_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = async_url
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings.async_database_url), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings.async_database_url), revision)

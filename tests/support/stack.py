"""The whole server under a real uvicorn on free ports, over a fresh database."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from api.server.runtime import Runtime
from api.services.container import Services
from api.settings import Settings
from schema.models import Base
from tests.support.databases import migrate_async
from tests.support.ports import free_port
from tests.support.uvicorn_server import serve

ADMIN_PASSWORD = "correct-horse-battery"
SECRET = "test-secret-key-" + "x" * 32


@dataclass
class Stack:
    url: str
    app: Starlette
    settings: Settings

    @property
    def runtime(self) -> Runtime:
        """The composition root the running app was built on."""
        found: Runtime = self.app.state.runtime
        return found

    @property
    def services(self) -> Services:
        return self.runtime.services


def test_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": f"sqlite:///{tmp / 'smartvend.db'}",
        "var_dir": tmp / "var",
        "mqtt_port": free_port(),
        "secret_key": SECRET,
        "admin_password": ADMIN_PASSWORD,
        "alert_interval_s": 0,  # tests run the alert sender themselves
        "webhook_interval_s": 0,  # ... and the webhook sender
    }
    values.update(overrides)
    environ = {f"SMARTVEND_{k.upper()}": str(v) for k, v in values.items()}
    return Settings.from_env(environ)


def server_environ(database_url: str, var_dir: Path, mqtt_url: str, **extra: str) -> dict[str, str]:
    """A ``smartvend serve`` process's settings (as environment values) on an external
    broker; ``extra`` on top."""
    return {
        "env": "test",
        "database_url": database_url,
        "secret_key": SECRET,
        "var_dir": str(var_dir),
        "mqtt_url": mqtt_url,
        **extra,
    }


async def create_schema(settings: Settings) -> None:
    engine = create_async_engine(settings.async_database_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


@contextlib.asynccontextmanager
async def running_stack(tmp: Path, *, mqtt: bool = True, **kwargs: Any) -> AsyncIterator[Stack]:
    """``kwargs`` go to ``web.app.create_app`` (clock, gateway) or are settings overrides."""
    from web.app import create_app

    app_kwargs = {k: kwargs.pop(k) for k in ("clock", "gateway") if k in kwargs}
    settings = test_settings(tmp, **kwargs)
    await create_schema(settings)
    app = create_app(settings, mqtt=mqtt, **app_kwargs)
    async with serve(app) as url:
        yield Stack(url=url, app=app, settings=settings)


@contextlib.asynccontextmanager
async def two_servers(
    tmp: Path, database_url: str, **kwargs: Any
) -> AsyncIterator[tuple[Stack, Stack]]:
    """Two servers (as two workers or hosts would be) on one migrated database;
    ``kwargs`` are settings overrides both share."""
    await migrate_async(database_url)
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    async with (
        running_stack(tmp / "a", mqtt=False, database_url=database_url, **kwargs) as a,
        running_stack(tmp / "b", mqtt=False, database_url=database_url, **kwargs) as b,
    ):
        yield a, b

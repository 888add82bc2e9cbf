"""Alembic environment: async engines, batch mode on SQLite, URL from settings."""

import asyncio
import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

from alembic import context
from api.infra.db import create_engine
from api.settings import Settings
from schema.models import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    return Settings.from_env(os.environ).async_database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
            if broken is not None:
                raise RuntimeError(f"a migration left a dangling foreign key: {tuple(broken)}")


def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
    # SQLite rebuilds a table to alter it (drop, then rename the copy): with foreign
    # keys enforced, dropping a table others point at fails. They are checked
    # (``PRAGMA foreign_key_check``) before the migration commits instead.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


async def run_migrations_online() -> None:
    engine = create_engine(database_url())
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _foreign_keys_off)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_migrations_online())

"""Is this worker ready for traffic? The database answers, its schema is at head,
and the bridge is connected to the broker (and not being taken over by another
client with the same client id).

Each check returns None when fine or a short reason; ``/readyz`` answers 503
with every reason when one fails, so a load balancer takes the worker out and
an operator reads why.
"""

import asyncio
from collections.abc import Callable

from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.infra import migrations

CHECK_TIMEOUT_S = 2.0


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def database_problems(engine: AsyncEngine) -> dict[str, str]:
    """``{"database": why}`` or ``{"schema": why}`` when either is not ready."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            current = await connection.run_sync(_revision)
    except TimeoutError:
        return {"database": f"no answer within {CHECK_TIMEOUT_S:g} s"}
    except Exception as exc:  # any driver error means: not reachable
        return {"database": f"unreachable: {type(exc).__name__}"}
    head = migrations.head_revision()
    if current != head:
        return {"schema": f"at {current or 'no revision'}, the code needs {head}: run migrate"}
    return {}


def broker_problems(connected: Callable[[], bool] | None) -> dict[str, str]:
    """``{"broker": why}`` unless the bridge is connected (None: this server runs no MQTT)."""
    if connected is None or connected():
        return {}
    return {"broker": "the MQTT bridge is not connected"}


def takeover_problems(suspected: str | None) -> dict[str, str]:
    """``{"mqtt_client_id": why}`` while the bridge's connection keeps being taken over."""
    return {} if suspected is None else {"mqtt_client_id": suspected}


async def problems(
    engine: AsyncEngine,
    connected: Callable[[], bool] | None,
    takeover: Callable[[], str | None] | None = None,
) -> dict[str, str]:
    return {
        **await database_problems(engine),
        **broker_problems(connected),
        **takeover_problems(None if takeover is None else takeover()),
    }

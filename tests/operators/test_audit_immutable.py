"""The audit trail is append-only in the database itself, migrated or created from the models."""

from pathlib import Path

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from api.server.runtime import open_runtime
from api.services import audit
from api.services.audit import AuditFilter
from api.settings import Settings
from schema.models import AuditEntry
from tests.support.stack import create_schema
from tests.support.stack import test_settings as settings_for

pytest_plugins = ["tests.support.db_fixtures"]


async def _refuses_changes(settings: Settings) -> None:
    async with open_runtime(settings) as rt:
        db = rt.services.ctx.db
        async with db.begin() as s:
            audit.record(
                s, "ann", "price_changed", "machine:m-1", {"price_amount": 2500},
                {"price_amount": 3000}, "festival price", at=1_700_000_000,
            )  # fmt: skip
        statements = [
            update(AuditEntry).values(reason="nothing happened"),
            delete(AuditEntry),
            text("UPDATE audit_entries SET actor = 'someone else'"),
            text("DELETE FROM audit_entries"),
        ]
        for statement in statements:
            with pytest.raises(DBAPIError, match="append-only"):
                async with db.begin() as s:
                    await s.execute(statement)
        entries = await rt.services.audit.entries(AuditFilter(machine_id="m-1"))
        assert [(e.actor, e.action, e.reason, e.after) for e in entries] == [
            ("ann", "price_changed", "festival price", {"price_amount": 3000})
        ]
        async with db.begin() as s:  # appending still works
            audit.record(s, "ann", "mode_changed", "machine:m-1", None, {"mode": "x"}, None)
        assert len(await rt.services.audit.entries(AuditFilter())) == 2


async def test_migrated_audit_table_refuses_update_and_delete(migrated_url: str) -> None:
    await _refuses_changes(Settings(database_url=migrated_url))


async def test_audit_table_from_the_models_refuses_too(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    await create_schema(settings)
    await _refuses_changes(settings)


def test_unknown_actions_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(None, "ann", "price_chnaged", "machine:m-1", None, None)  # type: ignore[arg-type]


def test_existing_admin_accounts_become_admins(database_url: str) -> None:
    """Revision 0007 keeps every account of 0004 as a user with role admin, all locations."""
    import sqlalchemy as sa

    from tests.support.databases import migrate
    from tests.test_migrations import sync_engine

    migrate(database_url, "0004")
    engine = sync_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO admin_users (username, password_hash, disabled, created_at, "
                    "token_version) VALUES ('old-admin', 'x', false, 1, 0)"
                )
            )
        migrate(database_url, "0007")
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT role, locations FROM admin_users WHERE username = 'old-admin'")
            ).one()
        assert (row.role, row.locations) == ("admin", None)
    finally:
        engine.dispose()

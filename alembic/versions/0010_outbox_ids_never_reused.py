"""the outbox's ids are never reused on SQLite

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:50:00.000000

The drain publishes a batch of outbox rows and then deletes them by id. On SQLite
an INTEGER PRIMARY KEY without AUTOINCREMENT takes the largest id plus one, so a
retained message that superseded a row of the batch in flight (deleting it, then
inserting) could take that row's id and be deleted unpublished with the batch.
AUTOINCREMENT keeps every id ever used out of reach. PostgreSQL's sequence never
went back, so it has nothing to change.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "outbox", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)

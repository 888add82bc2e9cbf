"""indexes for the periodic work: codes coming due, commands finished since a moment

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 13:20:00.000000

The sweeper asks every second which machines' display codes are due; the daily
figures' feed asks every few seconds which commands finished since its last read.
Both scanned the whole table; with these indexes they read what they ask for.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_machines_display_code_expires_at", "machines", ["display_code_expires_at"])
    op.create_index(op.f("ix_commands_finished_at"), "commands", ["finished_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_commands_finished_at"), table_name="commands")
    op.drop_index("ix_machines_display_code_expires_at", table_name="machines")

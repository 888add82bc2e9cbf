"""rate budgets shared by every server process

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 13:50:00.000000

With several workers on PostgreSQL, the token buckets of the code-guess
budgets, the admin login throttle and the feedback limit live in one table,
updated atomically (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), so a
limit holds whichever worker a request reaches. A single process on SQLite
keeps them in memory and leaves the table empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_budgets",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("capacity", sa.Double(), nullable=False),
        sa.Column("per_s", sa.Double(), nullable=False),
        sa.Column("full_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_budgets")),
    )
    with op.batch_alter_table("rate_budgets", schema=None) as batch_op:
        batch_op.create_index("ix_rate_budgets_full_at", ["full_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rate_budgets", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_budgets_full_at")
    op.drop_table("rate_budgets")

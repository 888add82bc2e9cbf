"""a manual refund keeps the operator's reason; emailed sales reports are recorded

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:30:00.000000

``refunds.note`` holds what the operator wrote (reports, CSV and webhooks show it;
until now it was only in the audit trail). ``report_mails`` holds one row per
emailed report period, so each period's report is sent once.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.String(length=300), nullable=True))
    op.create_table(
        "report_mails",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("recipients", sa.String(length=500), nullable=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.CheckConstraint(
            "period IN ('daily', 'weekly')", name=op.f("ck_report_mails_period_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_mails")),
        sa.UniqueConstraint(
            "period", "period_start", name=op.f("uq_report_mails_period_period_start")
        ),
    )


def downgrade() -> None:
    op.drop_table("report_mails")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_column("note")

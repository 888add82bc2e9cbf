"""admin token versions, simulated machines, test gateway records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("simulated", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Machines the demo and simulator provisioning made before the flag existed.
    op.execute(
        "UPDATE machines SET simulated = true WHERE location = 'Demo floor' "
        "AND (id LIKE 'demo-%' OR id LIKE 'sim-%')"
    )
    op.create_table(
        "test_gateway_records",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_gateway_records")),
    )
    with op.batch_alter_table("test_gateway_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_test_gateway_records_parent"), ["parent"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("test_gateway_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_gateway_records_parent"))
    op.drop_table("test_gateway_records")
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_column("simulated")
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.drop_column("token_version")

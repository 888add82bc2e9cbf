"""users with roles and location scopes; an append-only audit trail; outgoing webhooks

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 07:00:00.000000

A machine may be decommissioned (``removed_at``).  Every existing admin account becomes a user with role ``admin`` and no
location scope.  ``audit_entries`` refuses UPDATE and DELETE in the database
itself: a trigger raising on SQLite, a trigger function on PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "audit entries are append-only"
TRIGGERS = {
    "sqlite": [
        f"CREATE TRIGGER audit_entries_no_{what} BEFORE {what.upper()} ON audit_entries "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        for what in ("update", "delete")
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_entries_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$",
        "CREATE TRIGGER audit_entries_no_change BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON audit_entries FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse()",
    ],
}


def upgrade() -> None:
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), server_default="admin", nullable=False)
        )
        batch_op.add_column(sa.Column("locations", sa.JSON(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_admin_users_role_known"),
            "role IN ('admin', 'operator', 'restocker', 'viewer')",
        )
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=120), nullable=False),
        sa.Column("machine_id", sa.String(length=32), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entries_at", ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_actor"), ["actor"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_entries_machine_id"), ["machine_id"], unique=False
        )
    for statement in TRIGGERS.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    op.create_table(
        "outgoing_webhooks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outgoing_webhooks")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.BigInteger(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["outgoing_webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_outgoing_webhooks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "webhook_id", "event_id", name=op.f("uq_webhook_deliveries_webhook_id_event_id")
        ),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_status_next_at", ["status", "next_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_webhook_id"), ["webhook_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("outgoing_webhooks")
    op.drop_table("audit_entries")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_entries_refuse()")
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_admin_users_role_known"), type_="check")
        batch_op.drop_column("locations")
        batch_op.drop_column("role")
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_column("removed_at")

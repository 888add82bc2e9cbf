"""shoppers' feedback; manual refunds on top of the automatic one; alerts name their order

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 12:45:00.000000

A payment keeps at most one automatic refund (what did not come out, a late or
duplicate payment), now enforced by a partial unique index; an operator's
manual refunds (reason ``manual``) may add to it, up to what was paid.  An
alert about an order (a failed vend or refund) links to it.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTOMATIC = sa.text("reason <> 'manual'")


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("machine_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("rating IN ('up', 'down')", name=op.f("ck_feedback_rating_known")),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_feedback_machine_id_machines")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_feedback_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("order_id", name=op.f("uq_feedback_order_id")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_feedback_machine_id_created_at", ["machine_id", "created_at"], unique=False
        )

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_refunds_payment_id"), type_="unique")
        batch_op.create_index("ix_refunds_payment_id", ["payment_id"], unique=False)
        batch_op.create_index(
            "uq_refunds_automatic_per_payment",
            ["payment_id"],
            unique=True,
            sqlite_where=AUTOMATIC,
            postgresql_where=AUTOMATIC,
        )

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_id", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_alerts_order_id_orders"), "orders", ["order_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_alerts_order_id_orders"), type_="foreignkey")
        batch_op.drop_column("order_id")

    # Money history is never deleted to fit the old one-refund-per-payment rule.
    shared = op.get_bind().scalar(
        sa.text(
            "SELECT COUNT(*) FROM (SELECT payment_id FROM refunds "
            "GROUP BY payment_id HAVING COUNT(*) > 1) AS several"
        )
    )
    if shared:
        raise RuntimeError(
            f"{shared} payment(s) have more than one refund; revision 0001 allows one per payment"
        )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("uq_refunds_automatic_per_payment")
        batch_op.drop_index("ix_refunds_payment_id")
        batch_op.create_unique_constraint(op.f("uq_refunds_payment_id"), ["payment_id"])

    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_machine_id_created_at")
        batch_op.drop_index("ix_feedback_created_at")
    op.drop_table("feedback")

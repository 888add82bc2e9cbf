"""several products per machine: a catalogue, slots, order lines

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 06:30:00.000000

Every machine gets one slot ``"1"`` on motor 0 holding a product made from the
machine's name and price, with the machine's capacity and stock (par = capacity);
every order gets one line on that slot with its quantity, unit price and what
came out. ``machines.price_amount``/``capacity``/``stock`` stay as the v1 mirror
(a one-slot machine's slot; with several slots: lowest enabled price and totals).
An order's amount is the sum of its lines, so ``amount = unit_amount * quantity``
gives way to ``amount >= 0`` (a downgrade restores it, and refuses orders of
several prices).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A product per existing machine has the id 'prdm_' || machines.id: one no new
# product (``prd_`` + random) can take.


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("price_amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("image_tag", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "length(name) >= 1 AND length(name) <= 40", name=op.f("ck_products_name_length")
        ),
        sa.CheckConstraint("price_amount >= 0", name=op.f("ck_products_price_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_products_sku")),
    )
    op.create_table(
        "product_images",
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("content_type", sa.String(length=16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "content_type IN ('image/png', 'image/jpeg', 'image/webp')",
            name=op.f("ck_product_images_type_known"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_product_images_product_id_products")
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_images")),
    )
    op.create_table(
        "machine_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("machine_id", sa.String(length=32), nullable=False),
        sa.Column("slot_id", sa.String(length=4), nullable=False),
        sa.Column("motor", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("price_amount", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("par", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sold_out_taps", sa.Integer(), nullable=False),
        sa.Column("low_stock_alerted", sa.Boolean(), nullable=False),
        sa.Column("sold_out_alerted", sa.Boolean(), nullable=False),
        sa.CheckConstraint("capacity >= 1", name=op.f("ck_machine_slots_capacity_positive")),
        sa.CheckConstraint("motor >= 0", name=op.f("ck_machine_slots_motor_not_negative")),
        sa.CheckConstraint(
            "par >= 0 AND par <= capacity", name=op.f("ck_machine_slots_par_within_capacity")
        ),
        sa.CheckConstraint(
            "price_amount IS NULL OR price_amount >= 0",
            name=op.f("ck_machine_slots_price_not_negative"),
        ),
        sa.CheckConstraint(
            "length(slot_id) >= 1 AND length(slot_id) <= 4",
            name=op.f("ck_machine_slots_slot_id_length"),
        ),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_machine_slots_stock_not_negative")),
        sa.CheckConstraint(
            "stock <= capacity", name=op.f("ck_machine_slots_stock_within_capacity")
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_machine_slots_machine_id_machines")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_machine_slots_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_slots")),
        sa.UniqueConstraint("machine_id", "motor", name=op.f("uq_machine_slots_machine_id_motor")),
        sa.UniqueConstraint(
            "machine_id", "slot_id", name=op.f("uq_machine_slots_machine_id_slot_id")
        ),
    )
    with op.batch_alter_table("machine_slots", schema=None) as batch_op:
        batch_op.create_index("ix_machine_slots_machine_id", ["machine_id"], unique=False)
        batch_op.create_index("ix_machine_slots_product_id", ["product_id"], unique=False)
    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(length=4), nullable=False),
        sa.Column("motor", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("product_name", sa.String(length=40), nullable=False),
        sa.Column("unit_amount", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("dispensed", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "dispensed >= 0 AND dispensed <= quantity",
            name=op.f("ck_order_lines_dispensed_in_range"),
        ),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_order_lines_quantity_positive")),
        sa.CheckConstraint(
            "unit_amount >= 0", name=op.f("ck_order_lines_unit_amount_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_lines_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_order_lines_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.UniqueConstraint("order_id", "slot", name=op.f("uq_order_lines_order_id_slot")),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index("ix_order_lines_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_order_lines_product_id", ["product_id"], unique=False)
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "planogram_version", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )
        batch_op.add_column(sa.Column("desired_slots", sa.JSON(), nullable=True))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_amount_matches"), type_="check")
        batch_op.create_check_constraint(op.f("ck_orders_amount_not_negative"), "amount >= 0")

    # Every machine becomes one slot "1" on motor 0; every order one line on it.
    op.execute(
        "INSERT INTO products (id, sku, name, price_amount, currency, active, image_tag,"
        " created_at, updated_at)"
        " SELECT 'prdm_' || machines.id, NULL, substr(machines.name, 1, 40),"
        " machines.price_amount, machines.currency, true, NULL,"
        " machines.created_at, machines.created_at FROM machines"
    )
    op.execute(
        "INSERT INTO machine_slots (machine_id, slot_id, motor, product_id, price_amount,"
        " capacity, par, stock, enabled, position, sold_out_taps, low_stock_alerted,"
        " sold_out_alerted)"
        " SELECT machines.id, '1', 0, 'prdm_' || machines.id, NULL, machines.capacity,"
        " machines.capacity, machines.stock, true, 0, 0, machines.low_stock_alerted,"
        " machines.stock = 0 FROM machines"
    )
    op.execute(
        "INSERT INTO order_lines (order_id, position, slot, motor, product_id, product_name,"
        " unit_amount, quantity, dispensed)"
        " SELECT orders.id, 0, '1', 0, 'prdm_' || machines.id, substr(machines.name, 1, 40),"
        " orders.unit_amount, orders.quantity, orders.dispensed"
        " FROM orders JOIN machines ON machines.id = orders.machine_id"
    )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_amount_not_negative"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_orders_amount_matches"), "amount = unit_amount * quantity"
        )
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_column("desired_slots")
        batch_op.drop_column("planogram_version")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_order_lines_product_id")
        batch_op.drop_index("ix_order_lines_order_id")
    op.drop_table("order_lines")
    with op.batch_alter_table("machine_slots", schema=None) as batch_op:
        batch_op.drop_index("ix_machine_slots_product_id")
        batch_op.drop_index("ix_machine_slots_machine_id")
    op.drop_table("machine_slots")
    op.drop_table("product_images")
    op.drop_table("products")

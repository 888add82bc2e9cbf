"""SmartVend's database tables: typed SQLAlchemy 2 models with named constraints.

The database holds the truth and enforces the invariants the vend rules rely on:
one active lock per machine, 0 <= stock <= capacity, one dispense command per
order, one automatic refund per payment (an operator's manual refunds come on
top, up to what was paid), one feedback per order, unique gateway and
webhook-event ids.
"""

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from schema import statuses

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MACHINE_MODES = ("in_service", "out_of_service")
SESSION_STATES = statuses.SESSION
ORDER_STATES = statuses.ORDER
COMMAND_STATES = statuses.COMMAND
FINAL_COMMAND_STATES = statuses.COMMAND_FINAL
REFUND_STATES = statuses.REFUND
MANUAL_REFUND = statuses.MANUAL_REFUND
_ACTIVE_LOCK = f"status = '{statuses.SESSION[0]}'"  # the partial unique index's condition
USER_ROLES = ("admin", "operator", "restocker", "viewer")
RATINGS = ("up", "down")
FEEDBACK_COMMENT_MAX = 500


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Machine(Base):
    __tablename__ = "machines"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("stock <= capacity", name="stock_within_capacity"),
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        CheckConstraint("price_amount >= 0", name="price_not_negative"),
        CheckConstraint(_one_of("mode", MACHINE_MODES), name="mode_known"),
        Index("ix_machines_display_code", "display_code", unique=True),
        # The sweeper looks for codes due every second: the due ones, not every machine.
        Index("ix_machines_display_code_expires_at", "display_code_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    location: Mapped[str | None] = mapped_column(String(200))
    api_key_hash: Mapped[str] = mapped_column(String(200))
    key_revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    price_amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    capacity: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    restocked_total: Mapped[int] = mapped_column(Integer, default=0)
    dispensed_total: Mapped[int] = mapped_column(Integer, default=0)
    mode: Mapped[str] = mapped_column(String(20), default="in_service")
    display_code: Mapped[str | None] = mapped_column(String(6))
    display_code_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    code_failures: Mapped[int] = mapped_column(Integer, default=0)
    desired_version: Mapped[int] = mapped_column(Integer, default=0)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    boot: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen: Mapped[int | None] = mapped_column(BigInteger)
    fw: Mapped[str | None] = mapped_column(String(32))
    reported_version: Mapped[int | None] = mapped_column(Integer)
    reported_mode: Mapped[str | None] = mapped_column(String(20))
    reported_stock: Mapped[int | None] = mapped_column(Integer)
    low_stock_threshold: Mapped[int | None] = mapped_column(Integer)
    low_stock_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    offline_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Run by this server's own simulator (make run, smartvend simulate): only such a
    # machine's display code may be previewed on its public page in dev mode.
    simulated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Raised by every planogram change (the editor's stale-write check).
    planogram_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # The slots as last sent in ``desired``: refreshed whenever no vend session is
    # open, so a planogram change during a session reaches the machine at its end.
    desired_slots: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)
    # Decommissioned: its key stops working, it leaves fleet views, its history stays.
    removed_at: Mapped[int | None] = mapped_column(BigInteger)


class VendSession(Base):
    """A shopper's lock on a machine."""

    __tablename__ = "vend_sessions"
    __table_args__ = (
        CheckConstraint(_one_of("status", SESSION_STATES), name="status_known"),
        Index(
            "uq_vend_sessions_one_active_per_machine",
            "machine_id",
            unique=True,
            sqlite_where=text(_ACTIVE_LOCK),
            postgresql_where=text(_ACTIVE_LOCK),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=statuses.SESSION[0])
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    end_reason: Mapped[str | None] = mapped_column(String(32))


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("dispensed >= 0 AND dispensed <= quantity", name="dispensed_in_range"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(_one_of("status", ORDER_STATES), name="status_known"),
        UniqueConstraint("gateway_order_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), index=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("vend_sessions.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_amount: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=statuses.ORDER[0], index=True)
    dispensed: Mapped[int] = mapped_column(Integer, default=0)
    gateway: Mapped[str] = mapped_column(String(16))
    gateway_order_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    paid_at: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        UniqueConstraint("gateway_payment_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    gateway_payment_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # counted: this payment pays for its order; extra: paid twice or too late/wrong.
    disposition: Mapped[str] = mapped_column(String(16))
    verified_via: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(_one_of("status", REFUND_STATES), name="status_known"),
        Index("ix_refunds_payment_id", "payment_id"),
        Index(
            "uq_refunds_automatic_per_payment",
            "payment_id",
            unique=True,
            sqlite_where=text(f"reason <> '{MANUAL_REFUND}'"),
            postgresql_where=text(f"reason <> '{MANUAL_REFUND}'"),
        ),
        UniqueConstraint("gateway_refund_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    amount: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=statuses.REFUND[0], index=True)
    reason: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(300))  # an operator's words, for a manual one
    gateway_refund_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Feedback(Base):
    """A shopper's thumbs up or down on an order that ended, with an optional short comment."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint(_one_of("rating", RATINGS), name="rating_known"),
        UniqueConstraint("order_id"),
        Index("ix_feedback_machine_id_created_at", "machine_id", "created_at"),
        Index("ix_feedback_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    rating: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str | None] = mapped_column(String(FEEDBACK_COMMENT_MAX))
    created_at: Mapped[int] = mapped_column(BigInteger)


class Command(Base):
    """The one dispense command of a paid order."""

    __tablename__ = "commands"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("dispensed >= 0 AND dispensed <= quantity", name="dispensed_in_range"),
        CheckConstraint(_one_of("status", COMMAND_STATES), name="status_known"),
        UniqueConstraint("order_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=statuses.COMMAND[0], index=True)
    dispensed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(512))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    deadline: Mapped[int] = mapped_column(BigInteger)
    accepted_at: Mapped[int | None] = mapped_column(BigInteger)
    # Sales since a moment (the daily figures' feed, every few seconds): by this index.
    finished_at: Mapped[int | None] = mapped_column(BigInteger, index=True)


class DeviceEvent(Base):
    __tablename__ = "device_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(String(512))
    ts: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[int] = mapped_column(BigInteger, index=True)


class Telemetry(Base):
    __tablename__ = "telemetry"
    __table_args__ = (Index("ix_telemetry_machine_ts", "machine_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"))
    ts: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict[str, float]] = mapped_column(JSON)


class AdminUser(Base):
    """A dashboard and API user (the table keeps its first name) with one role."""

    __tablename__ = "admin_users"
    __table_args__ = (
        UniqueConstraint("username"),
        CheckConstraint(_one_of("role", USER_ROLES), name="role_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # In every admin token; logging out increases it, so saved tokens stop working.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    role: Mapped[str] = mapped_column(String(16), default="admin", server_default="admin")
    # None: every machine; a list: only machines whose ``location`` is in it.
    locations: Mapped[list[str] | None] = mapped_column(JSON)


class Integrator(Base):
    """A read-only MQTT account for reports built outside SmartVend."""

    __tablename__ = "integrators"
    __table_args__ = (UniqueConstraint("username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(200))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)


class WebhookEvent(Base):
    """Webhook deliveries already processed; a repeated id is a no-op."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[int] = mapped_column(BigInteger)


class OutboxMessage(Base):
    """An MQTT message to publish, written in the same transaction as its cause."""

    __tablename__ = "outbox"
    # Ids are never reused (SQLite's AUTOINCREMENT; PostgreSQL's sequence never goes
    # back): the drain deletes the ids it published, and a row written while they were
    # on the wire must not take a deleted row's id.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    retain: Mapped[bool] = mapped_column(Boolean)
    qos: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    machine_id: Mapped[str | None] = mapped_column(ForeignKey("machines.id"), index=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))  # when about an order
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)
    send_error: Mapped[str | None] = mapped_column(String(300))


class TestGatewayRecord(Base):
    """The built-in test gateway's orders, payments, refunds and idempotency keys,
    so refunds still work after a restart (kind: order, payment, refund, key)."""

    __tablename__ = "test_gateway_records"
    __test__ = False

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    parent: Mapped[str | None] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, object]] = mapped_column(JSON)


class RateBudget(Base):
    """One token bucket of a rate limit shared by every server process (PostgreSQL only:
    one process on SQLite keeps its budgets in memory). ``key`` is ``scope:identity``;
    the bucket held ``tokens`` at ``at`` and regains ``per_s`` a second up to
    ``capacity``; from ``full_at`` on it is full again, the same as no row."""

    __tablename__ = "rate_budgets"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)
    at: Mapped[float] = mapped_column(Double)
    capacity: Mapped[float] = mapped_column(Double)
    per_s: Mapped[float] = mapped_column(Double)
    full_at: Mapped[float] = mapped_column(Double, index=True)


ROLLOUT_STATES = ("running", "paused", "finished", "aborted")
ROLLOUT_MACHINE_STATES = (
    "queued",
    "sent",
    "downloading",
    "installing",
    "succeeded",
    "failed",
    "rejected",
    "timed_out",
    "canceled",
)
FIRMWARE_CHUNK_BYTES = 65536


class FirmwareRelease(Base):
    """A signed release: the manifest's exact bytes and their Ed25519 signature."""

    __tablename__ = "firmware_releases"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))  # the public key (hex) that verified it
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str | None] = mapped_column(String(64))


class FirmwareFile(Base):
    __tablename__ = "firmware_files"

    version: Mapped[str] = mapped_column(
        ForeignKey("firmware_releases.version", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(200), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


class FirmwareChunk(Base):
    """A file's bytes in ``FIRMWARE_CHUNK_BYTES`` pieces (``seq`` from 0): every worker
    on every host reads them from the one database, and one chunk at a time."""

    __tablename__ = "firmware_chunks"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    path: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class MachineTag(Base):
    __tablename__ = "machine_tags"

    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Rollout(Base):
    """A release rolled out to a target in cumulative waves (percent of the target)."""

    __tablename__ = "rollouts"
    __table_args__ = (
        CheckConstraint(_one_of("status", ROLLOUT_STATES), name="status_known"),
        Index("ix_rollouts_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("firmware_releases.version"))
    target: Mapped[dict[str, object]] = mapped_column(JSON)
    waves: Mapped[list[int]] = mapped_column(JSON)
    max_failure_pct: Mapped[float] = mapped_column(Double)
    deadline_s: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="running")
    wave: Mapped[int] = mapped_column(Integer, default=1)  # waves opened so far (1-based)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str | None] = mapped_column(String(64))
    finished_at: Mapped[int | None] = mapped_column(BigInteger)


class RolloutMachine(Base):
    """One machine of a rollout: its place in the order, its wave and its update command."""

    __tablename__ = "rollout_machines"
    __table_args__ = (
        CheckConstraint(_one_of("status", ROLLOUT_MACHINE_STATES), name="status_known"),
        UniqueConstraint("cmd_id"),
        Index("ix_rollout_machines_rollout_id_status", "rollout_id", "status"),
    )

    rollout_id: Mapped[str] = mapped_column(ForeignKey("rollouts.id"), primary_key=True)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    wave: Mapped[int] = mapped_column(Integer)  # the first wave (1-based) that includes it
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[str | None] = mapped_column(String(64))
    cmd_id: Mapped[str | None] = mapped_column(String(64))
    progress_bytes: Mapped[int | None] = mapped_column(BigInteger)
    progress_total: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[int | None] = mapped_column(BigInteger)  # set when its wave opens
    updated_at: Mapped[int] = mapped_column(BigInteger)


PRODUCT_NAME_MAX = 40
SLOT_ID_MAX = 4
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


class Product(Base):
    """An item of the installation's catalogue, sold from machines' slots."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_amount >= 0", name="price_not_negative"),
        CheckConstraint(
            f"length(name) >= 1 AND length(name) <= {PRODUCT_NAME_MAX}", name="name_length"
        ),
        UniqueConstraint("sku"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sku: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(PRODUCT_NAME_MAX))
    price_amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set with the image: a short hash, so its URL changes when the image does.
    image_tag: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ProductImage(Base):
    """A product's picture, in the database so every server process serves it."""

    __tablename__ = "product_images"
    __table_args__ = (CheckConstraint(_one_of("content_type", IMAGE_TYPES), name="type_known"),)

    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(16))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class MachineSlot(Base):
    """One selection of a machine: what shoppers pick (``slot_id``) is not the motor."""

    __tablename__ = "machine_slots"
    __table_args__ = (
        UniqueConstraint("machine_id", "slot_id"),
        UniqueConstraint("machine_id", "motor"),
        CheckConstraint(
            f"length(slot_id) >= 1 AND length(slot_id) <= {SLOT_ID_MAX}", name="slot_id_length"
        ),
        CheckConstraint("motor >= 0", name="motor_not_negative"),
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        CheckConstraint("par >= 0 AND par <= capacity", name="par_within_capacity"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("stock <= capacity", name="stock_within_capacity"),
        CheckConstraint("price_amount IS NULL OR price_amount >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), index=True)
    slot_id: Mapped[str] = mapped_column(String(SLOT_ID_MAX))
    motor: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    price_amount: Mapped[int | None] = mapped_column(Integer)  # None: the product's price
    capacity: Mapped[int] = mapped_column(Integer)
    par: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Shoppers who tapped this slot while it was sold out (lost demand).
    sold_out_taps: Mapped[int] = mapped_column(Integer, default=0)
    low_stock_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    sold_out_alerted: Mapped[bool] = mapped_column(Boolean, default=False)


class OrderLine(Base):
    """One slot's part of an order, with the name and unit price it was sold at."""

    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "slot"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("dispensed >= 0 AND dispensed <= quantity", name="dispensed_in_range"),
        CheckConstraint("unit_amount >= 0", name="unit_amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    slot: Mapped[str] = mapped_column(String(SLOT_ID_MAX))
    motor: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    product_name: Mapped[str] = mapped_column(String(PRODUCT_NAME_MAX))
    unit_amount: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    dispensed: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """One change an operator made, through any interface. Append-only: database
    triggers refuse UPDATE and DELETE (``AUDIT_IMMUTABLE_DDL``)."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(120))
    machine_id: Mapped[str | None] = mapped_column(String(32), index=True)
    before: Mapped[dict[str, object] | None] = mapped_column(JSON)
    after: Mapped[dict[str, object] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(500))


WEBHOOK_EVENTS = ("alert", "sale", "refund", "machine_online", "machine_offline", "test")
DELIVERY_STATES = ("pending", "delivered", "failed")


class OutgoingWebhook(Base):
    """An operator's receiver of signed event POSTs (``removed_at``: deleted, log kept)."""

    __tablename__ = "outgoing_webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    removed_at: Mapped[int | None] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One event for one receiver, written in its cause's transaction, sent by the
    leader and retried with backoff until a 2xx or for 24 hours."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        CheckConstraint(_one_of("status", DELIVERY_STATES), name="status_known"),
        Index("ix_webhook_deliveries_status_next_at", "status", "next_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("outgoing_webhooks.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[int] = mapped_column(BigInteger)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[int] = mapped_column(BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger)


REPORT_PERIODS = ("daily", "weekly")


class ReportMail(Base):
    """One emailed sales report per period: claimed before it is sent, so restarts and
    several workers send each period's report once."""

    __tablename__ = "report_mails"
    __table_args__ = (
        UniqueConstraint("period", "period_start"),
        CheckConstraint(_one_of("period", REPORT_PERIODS), name="period_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[int] = mapped_column(BigInteger)  # the local midnight it starts at
    period_end: Mapped[int] = mapped_column(BigInteger)
    recipients: Mapped[str] = mapped_column(String(500))
    claimed_at: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))


AUDIT_REFUSAL = "audit entries are append-only"
# (dialect, statements) that make audit_entries refuse UPDATE and DELETE.
AUDIT_IMMUTABLE_DDL: dict[str, tuple[str, ...]] = {
    "sqlite": tuple(
        f"CREATE TRIGGER audit_entries_no_{op} BEFORE {op.upper()} ON audit_entries "
        f"BEGIN SELECT RAISE(ABORT, '{AUDIT_REFUSAL}'); END"
        for op in ("update", "delete")
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION audit_entries_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{AUDIT_REFUSAL}'; END $$",
        "CREATE TRIGGER audit_entries_no_change BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON audit_entries FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse()",
    ),
}


def _audit_triggers(target: object, connection: Any, **_: object) -> None:
    for statement in AUDIT_IMMUTABLE_DDL.get(connection.dialect.name, ()):
        connection.exec_driver_sql(statement)


event.listen(AuditEntry.__table__, "after_create", _audit_triggers)


def table(model: Any) -> Table:
    """A model's table, for Core statements (the hot paths skip the ORM's unit of work)."""
    found: Table = model.__table__
    return found

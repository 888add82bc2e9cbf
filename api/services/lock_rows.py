"""A lock's rows, read with prepared Core statements: the shopper's first step.

Every shopper locks a machine and most let it go again, so these two requests
are the crowd's. The ORM's identity map and unit of work cost several times
what the statements do, so the lock path reads exactly the columns it needs,
with statements built once, into *detached* rows: ``Machine`` and
``VendSession`` objects that belong to no session and are never flushed. Their
changes are written by statements of the vend writer
(``api.services.vend_writer.take_lock`` and ``end_lock``), which also name the
change feed's channels themselves.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import class_mapper

from api.infra.prepared import Prepared
from api.lifecycle.snapshot import SessionSnap, Vend
from api.lifecycle.states import SessionStatus
from api.services.vend_load import machine_snap
from schema.models import Machine, Order, VendSession, table

MACHINES, LOCKS, ORDERS = table(Machine), table(VendSession), table(Order)

# What the lock path and the machine's ``desired``/``state`` read of a machine.
MACHINE_COLUMNS = (
    "id",
    "price_amount",
    "currency",
    "stock",
    "mode",
    "online",
    "display_code",
    "display_code_expires_at",
    "code_failures",
    "desired_version",
    "reported_mode",
    "last_seen",
    "desired_slots",
)
LOCK_COLUMNS = ("id", "machine_id", "client_id", "status", "created_at", "expires_at")

_machine_cols = [MACHINES.c[name] for name in MACHINE_COLUMNS]
_lock_cols = [LOCKS.c[name].label(f"lock_{name}") for name in LOCK_COLUMNS]
_with_lock = MACHINES.outerjoin(
    LOCKS, and_(LOCKS.c.machine_id == MACHINES.c.id, LOCKS.c.status == SessionStatus.ACTIVE)
)
_MACHINE_BY_ID = Prepared(
    select(*_machine_cols, *_lock_cols)
    .select_from(_with_lock)
    .where(MACHINES.c.id == bindparam("key"))
)
_MACHINE_BY_CODE = Prepared(
    select(*_machine_cols, *_lock_cols)
    .select_from(_with_lock)
    .where(MACHINES.c.display_code == bindparam("key"))
)
# A lock with its machine and its orders' statuses, in one statement: one row per order
# (one with no order's columns for a lock without orders). Row locks on the lock, then
# its machine, in the order every lock path takes them (PostgreSQL's FOR UPDATE locks
# the FROM list's rows in its order).
_HELD = Prepared(
    select(
        *(LOCKS.c[name].label(f"lock_{name}") for name in LOCK_COLUMNS),
        *_machine_cols,
        ORDERS.c.id.label("order_id"),
        ORDERS.c.status.label("order_status"),
    )
    .select_from(
        LOCKS.join(MACHINES, MACHINES.c.id == LOCKS.c.machine_id).outerjoin(
            ORDERS, ORDERS.c.session_id == LOCKS.c.id
        )
    )
    .where(LOCKS.c.id == bindparam("session_id"))
    .order_by(ORDERS.c.created_at, ORDERS.c.id)
    .with_for_update(of=[LOCKS, MACHINES])
)


_NEW_MACHINE = class_mapper(Machine).class_manager.new_instance
_NEW_LOCK = class_mapper(VendSession).class_manager.new_instance


def detached(
    new: Callable[[], Any], row: dict[str, Any], columns: Iterable[str], prefix: str = ""
) -> Any:
    """An object from ``row`` (its columns named ``prefix`` + column), in no session. Its
    values are placed as a load places them (no change events): only what is set later is
    a change."""
    obj = new()
    obj.__dict__.update((name, row[prefix + name]) for name in columns)
    return obj


def detached_machine(row: dict[str, Any]) -> Machine:
    """A machine from a row of :data:`MACHINE_COLUMNS`, in no session."""
    machine: Machine = detached(_NEW_MACHINE, row, MACHINE_COLUMNS)
    return machine


def detached_lock(row: dict[str, Any], prefix: str = "") -> VendSession:
    lock: VendSession = detached(_NEW_LOCK, row, LOCK_COLUMNS, prefix)
    return lock


async def machine_with_lock(
    s: AsyncSession, *, machine_id: str | None = None, code: str | None = None
) -> tuple[Machine, VendSession | None] | None:
    """The machine named, or showing ``code``, with its active lock if it has one."""
    statement, key = (_MACHINE_BY_ID, machine_id) if code is None else (_MACHINE_BY_CODE, code)
    row = await statement.first(s, {"key": key})
    if row is None:
        return None
    lock = None if row["lock_id"] is None else detached_lock(row, "lock_")
    return detached_machine(row), lock


@dataclass(frozen=True)
class LockRows:
    """A lock (row-locked) with its machine and its orders, and the lifecycle's view."""

    lock: VendSession
    machine: Machine
    orders: tuple[tuple[str, str], ...]

    @property
    def vend(self) -> Vend:
        lock, machine = self.lock, self.machine
        return Vend(
            machine=machine_snap(machine, lock.id if lock.status == SessionStatus.ACTIVE else None),
            session=SessionSnap(lock.id, lock.status, lock.expires_at, self.orders),
        )


async def held(s: AsyncSession, session_id: str) -> LockRows | None:
    """The lock ``session_id`` with its machine and orders, row-locked (PostgreSQL) and
    detached; None when there is no such lock."""
    found = await _HELD.all(s, {"session_id": session_id})
    if not found:
        return None
    first = found[0]
    orders = tuple((r["order_id"], r["order_status"]) for r in found if r["order_id"] is not None)
    return LockRows(detached_lock(first, "lock_"), detached_machine(first), orders)

"""Device messages applied many at a time: one transaction, a few bulk statements.

Status, reported, telemetry and events of up to a few hundred messages are
folded per machine in arrival order, so the boot rule and the reported
version see them in the order the broker delivered them. The transaction then
locks and reads the batch's machines in one SELECT, inserts telemetry and
events in bulk, updates the machines in bulk by primary key, and writes one
``state`` per machine whose presence or mode changed (however many messages
changed it). Results never come here: they have a lane of their own.

Messages arrive typed: :func:`decode` turns a payload into the dataclass of its
kind (:class:`Status`, :class:`Reported`, :class:`Telemetry`, :class:`Events`),
through one decoder per kind, so what :func:`fold` reads is checked by mypy from
the wire to the row. The statements are Core ones on the tables (no ORM unit of
work): a batch is a handful of statements whatever its size.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.infra.changes_from_commits import FLEET, touch
from api.infra.one_of import PerDialect, one_of
from api.lifecycle.states import SessionStatus
from api.services import outgoing
from api.services.context import Context
from api.services.presence_rule import status_applies
from schema import messages, topics
from schema.errors import SchemaError
from schema.models import DeviceEvent, Machine, OutboxMessage, VendSession, table
from schema.models import Telemetry as TelemetryRow

if TYPE_CHECKING:
    from schema.messages import EventsMsg, ReportedMsg, StatusMsg, TelemetryMsg

BATCHED_KINDS = ("status", "reported", "telemetry", "events")
# What a device message may change on its machine, written back in bulk.
WRITTEN = (
    "online",
    "boot",
    "last_seen",
    "fw",
    "reported_version",
    "reported_mode",
    "reported_stock",
    "offline_alerted",
)
# What ``state`` needs besides.
READ = (*WRITTEN, "mode", "stock", "price_amount", "currency", "desired_slots")


@dataclass(frozen=True, slots=True)
class Status:
    machine_id: str
    msg: "StatusMsg"
    kind = "status"


@dataclass(frozen=True, slots=True)
class Reported:
    machine_id: str
    msg: "ReportedMsg"
    kind = "reported"


@dataclass(frozen=True, slots=True)
class Telemetry:
    machine_id: str
    msg: "TelemetryMsg"
    kind = "telemetry"


@dataclass(frozen=True, slots=True)
class Events:
    machine_id: str
    msg: "EventsMsg"
    kind = "events"


DeviceMessage = Status | Reported | Telemetry | Events
Decoder = Callable[[str, bytes], DeviceMessage]
# One decoder per batched kind: the payload checked against its kind's schema and typed.
DECODERS: dict[str, Decoder] = {
    "status": lambda mid, payload: Status(mid, messages.decode("status", payload)),
    "reported": lambda mid, payload: Reported(mid, messages.decode("reported", payload)),
    "telemetry": lambda mid, payload: Telemetry(mid, messages.decode("telemetry", payload)),
    "events": lambda mid, payload: Events(mid, messages.decode("events", payload)),
}


def decode(kind: str, machine_id: str, payload: bytes) -> DeviceMessage:
    """``payload`` as the typed message of ``kind``; raises :class:`SchemaError`."""
    decoder = DECODERS.get(kind)
    if decoder is None:
        raise SchemaError(f"{kind}: not a batched device message")
    return decoder(machine_id, payload)


@dataclass
class MachineFold:
    """One machine's columns as the batch's messages change them, in order."""

    row: dict[str, Any]
    dirty: bool = False  # columns to write back
    state: bool = False  # integrators' ``state`` to publish


@dataclass
class Folded:
    machines: dict[str, MachineFold]
    telemetry: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    unknown: int = 0  # messages from machines that are not registered


def fold(machines: dict[str, MachineFold], batch: Sequence[DeviceMessage], now: int) -> Folded:
    """Apply ``batch`` to ``machines`` in memory (pure): what to write, in bulk."""
    out = Folded(machines)
    for item in batch:
        machine = machines.get(item.machine_id)
        if machine is None:
            out.unknown += 1
            continue
        row = machine.row
        if isinstance(item, Status):
            status = item.msg
            boot, online = status["boot"], status["state"] == "online"
            if not status_applies(row["boot"], row["online"], boot, online):
                continue
            row["boot"], row["online"] = boot, online
            row["last_seen"] = now  # connected until now: a will is sent when the link is lost
            if online:
                row["offline_alerted"] = False
                row["fw"] = status.get("fw") or row["fw"]
            machine.dirty = machine.state = True
            continue
        # Any other message notes when the machine was last heard; it never
        # brings a machine online (presence is ``status``'s alone).
        row["last_seen"] = now
        machine.dirty = True
        if isinstance(item, Reported):
            reported = item.msg
            machine.state = machine.state or row["reported_mode"] != reported["mode"]
            row["reported_version"] = reported["desired_version"]
            row["reported_mode"] = reported["mode"]
            row["reported_stock"] = reported["stock"]
        elif isinstance(item, Telemetry):
            readings = item.msg
            data = {k: v for k, v in readings.items() if k != "ts"}
            out.telemetry.append(
                {"machine_id": item.machine_id, "ts": readings["ts"], "data": data}
            )
        else:
            event = item.msg
            out.events.append(
                {
                    "machine_id": item.machine_id,
                    "type": event["type"],
                    "code": event["code"],
                    "detail": event["detail"],
                    "ts": event["ts"],
                    "received_at": now,
                }
            )
    return out


@dataclass(frozen=True)
class BatchOutcome:
    applied: int  # messages from registered machines
    unknown: int
    states: int  # ``state`` messages written to the outbox


_MACHINES = table(Machine)
_READ_NAMES = ("id", *READ)
_SELECT = PerDialect(
    lambda dialect: (
        select(*(_MACHINES.c[name] for name in _READ_NAMES))
        # A decommissioned machine's last words (its will, as the broker drops it) change
        # nothing: its retained topics stay cleared.
        .where(one_of(_MACHINES.c.id, "ids", dialect), _MACHINES.c.removed_at.is_(None))
        .order_by(_MACHINES.c.id)
        .with_for_update()
    )
)
_SESSIONS = table(VendSession)
_BUSY = PerDialect(
    lambda dialect: select(_SESSIONS.c.machine_id).where(
        one_of(_SESSIONS.c.machine_id, "ids", dialect),
        _SESSIONS.c.status == SessionStatus.ACTIVE,
    )
)
# Bound names cannot be the columns' own (SQLAlchemy keeps those for SET).
_UPDATE = (
    update(_MACHINES)
    .where(_MACHINES.c.id == bindparam("w_id"))
    .values({name: bindparam(f"w_{name}") for name in WRITTEN})
)
_INSERT_TELEMETRY = insert(table(TelemetryRow))
_INSERT_EVENTS = insert(table(DeviceEvent))


async def apply_batch(ctx: Context, batch: Sequence[DeviceMessage]) -> BatchOutcome:
    """Apply ``batch`` (no results) in one transaction; raises if the database refuses."""
    now = ctx.clock.now()
    ids = sorted({item.machine_id for item in batch})
    async with ctx.db.begin() as s:
        rows = await s.execute(_SELECT.on(s), {"ids": ids})
        machines = {row[0]: MachineFold(dict(zip(_READ_NAMES, row, strict=True))) for row in rows}
        done = fold(machines, batch, now)
        if done.telemetry:
            await s.execute(_INSERT_TELEMETRY, done.telemetry)
        if done.events:
            await s.execute(_INSERT_EVENTS, done.events)
        changed = [m.row for m in machines.values() if m.dirty]
        if changed:
            await s.execute(
                _UPDATE,
                [{"w_id": r["id"], **{f"w_{k}": r[k] for k in WRITTEN}} for r in changed],
            )
            touch(s, FLEET)
        states = [m.row for m in machines.values() if m.state]
        if states:
            await _write_states(s, states, now)
    return BatchOutcome(len(batch) - done.unknown, done.unknown, len(states))


async def _write_states(s: AsyncSession, rows: list[dict[str, Any]], now: int) -> None:
    busy = set((await s.scalars(_BUSY.on(s), {"ids": [r["id"] for r in rows]})).all())
    out: list[dict[str, Any]] = []
    for r in rows:
        shown = Machine(**{k: r[k] for k in READ})  # transient: never added to the session
        payload = messages.encode("state", outgoing.state_payload(shown, r["id"] in busy))
        out.append(
            {
                "topic": topics.state(r["id"]),
                "payload": payload,
                "retain": True,
                "qos": 1,
                "created_at": now,
            }
        )
    await outgoing.supersede(s, [topics.state(r["id"]) for r in rows])
    await s.execute(insert(OutboxMessage), out)
    outgoing.mark_written(s)

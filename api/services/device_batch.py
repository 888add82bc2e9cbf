"""Device messages applied many at a time: one transaction, a few bulk statements.

Status, reported, telemetry and events of up to a few hundred messages are
folded per machine in arrival order, so the boot rule and the reported
version see them in the order the broker delivered them. The transaction then
locks and reads the batch's machines in one SELECT, inserts telemetry and
events in bulk, updates the machines in bulk by primary key, and writes one
``state`` per machine whose presence or mode changed (however many messages
changed it). Results never come here: they have a lane of their own.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.infra.changes_from_commits import FLEET, touch
from api.lifecycle.states import SessionStatus
from api.services import outgoing
from api.services.context import Context
from api.services.presence_rule import status_applies
from schema import messages, topics
from schema.models import DeviceEvent, Machine, OutboxMessage, Telemetry, VendSession

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


@dataclass(frozen=True)
class DeviceMessage:
    kind: str
    machine_id: str
    msg: dict[str, Any]


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
        row, msg = machine.row, item.msg
        if item.kind == "status":
            boot, online = int(msg["boot"]), msg["state"] == "online"
            if not status_applies(row["boot"], row["online"], boot, online):
                continue
            row["boot"], row["online"] = boot, online
            row["last_seen"] = now  # connected until now: a will is sent when the link is lost
            if online:
                row["offline_alerted"] = False
                row["fw"] = msg.get("fw") or row["fw"]
            machine.dirty = machine.state = True
            continue
        # Any other message notes when the machine was last heard; it never
        # brings a machine online (presence is ``status``'s alone).
        row["last_seen"] = now
        machine.dirty = True
        if item.kind == "reported":
            machine.state = machine.state or row["reported_mode"] != msg["mode"]
            row["reported_version"] = msg["desired_version"]
            row["reported_mode"] = msg["mode"]
            row["reported_stock"] = msg["stock"]
        elif item.kind == "telemetry":
            data = {k: v for k, v in msg.items() if k != "ts"}
            out.telemetry.append({"machine_id": item.machine_id, "ts": msg["ts"], "data": data})
        elif item.kind == "events":
            out.events.append(
                {
                    "machine_id": item.machine_id,
                    "type": msg["type"],
                    "code": msg["code"],
                    "detail": msg["detail"],
                    "ts": msg["ts"],
                    "received_at": now,
                }
            )
    return out


@dataclass(frozen=True)
class BatchOutcome:
    applied: int  # messages from registered machines
    unknown: int
    states: int  # ``state`` messages written to the outbox


async def apply_batch(ctx: Context, batch: Sequence[DeviceMessage]) -> BatchOutcome:
    """Apply ``batch`` (no results) in one transaction; raises if the database refuses."""
    now = ctx.clock.now()
    ids = sorted({item.machine_id for item in batch})
    columns = [Machine.id, *(getattr(Machine, name) for name in READ)]
    async with ctx.db.begin() as s:
        rows = await s.execute(
            select(*columns).where(Machine.id.in_(ids)).order_by(Machine.id).with_for_update()
        )
        machines = {row.id: MachineFold(dict(row._mapping)) for row in rows}
        done = fold(machines, batch, now)
        if done.telemetry:
            await s.execute(insert(Telemetry), done.telemetry)
        if done.events:
            await s.execute(insert(DeviceEvent), done.events)
        changed = [m.row for m in machines.values() if m.dirty]
        if changed:
            await s.execute(
                update(Machine), [{"id": r["id"], **{k: r[k] for k in WRITTEN}} for r in changed]
            )
            touch(s, FLEET)
        states = [m.row for m in machines.values() if m.state]
        if states:
            await _write_states(s, states, now)
    return BatchOutcome(len(batch) - done.unknown, done.unknown, len(states))


async def _write_states(s: AsyncSession, rows: list[dict[str, Any]], now: int) -> None:
    busy = set(
        (
            await s.scalars(
                select(VendSession.machine_id).where(
                    VendSession.machine_id.in_([r["id"] for r in rows]),
                    VendSession.status == SessionStatus.ACTIVE,
                )
            )
        ).all()
    )
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

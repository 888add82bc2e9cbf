"""What devices and integrators are shown, written to the outbox in the cause's transaction.

The payloads (``desired``, ``state``, ``cmd``, ``sales``) are pure functions of
the rows they are given; the MQTT drain (``api.mqtt.drain``) and the read
models build the same ones. Nothing here publishes: the MQTT bridge drains the
outbox after commit, so a crash between commit and publish loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import bindparam, delete, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from api.infra.one_of import PerDialect, one_of
from api.infra.prepared import Prepared
from api.services import planogram, sessions, webhooks_out
from schema import messages, topics, wire
from schema.models import Command, Machine, OutboxMessage, VendSession, table

if TYPE_CHECKING:
    from schema.messages import (
        CmdLineMsg,
        CmdMsg,
        DesiredMsg,
        DisplayMsg,
        PriceMsg,
        SalesMsg,
        SlotMsg,
        StateMsg,
        StateSlotMsg,
    )


def carries(kind: str, field: str) -> bool:
    """Whether the wire's field table for ``kind`` has ``field`` (contract 1.1's
    additions are sent once the wire module knows them)."""
    return any(name == field for name, _spec, _required in messages.SPECS[kind][0])


def _slots_allowed(kind: str, slots: object) -> bool:
    return isinstance(slots, list) and bool(slots) and carries(kind, "slots")


def price_of(machine: Machine) -> PriceMsg:
    return {"amount": machine.price_amount, "currency": machine.currency}


def desired_payload(machine: Machine, lock: VendSession | None) -> DesiredMsg:
    display: DisplayMsg | None = None
    code, expires_at = machine.display_code, machine.display_code_expires_at
    if lock is None and code is not None and expires_at is not None:
        display = {"code": code, "expires_at": expires_at}
    shown: DesiredMsg = {
        "version": machine.desired_version,
        "mode": "out_of_service" if machine.mode == "out_of_service" else "in_service",
        "display": display,
        "lock": None if lock is None else {"session": lock.id, "expires_at": lock.expires_at},
        "price": price_of(machine),
        "stock": machine.stock,
    }
    if _slots_allowed("desired", machine.desired_slots):
        shown["slots"] = cast(
            "list[SlotMsg]",
            [
                {k: v for k, v in slot.items() if k != "product"}
                for slot in machine.desired_slots or []
            ],
        )
    return shown


def state_payload(machine: Machine, busy: bool) -> StateMsg:
    if machine.mode == "out_of_service":
        mode = "out_of_service"
    else:
        mode = machine.reported_mode or "idle"
    state: StateMsg = {
        "online": machine.online,
        "mode": mode,
        "stock": machine.stock,
        "busy": busy,
        "price": price_of(machine),
        "last_seen": machine.last_seen,
    }
    if _slots_allowed("state", machine.desired_slots):
        state["slots"] = cast("list[StateSlotMsg]", state_slots(machine.desired_slots or []))
    return state


def state_slots(desired: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Integrators' view of the slots: ``desired``'s without the motors."""
    return [{k: v for k, v in slot.items() if k not in ("motor", "product")} for slot in desired]


def command_payload(command: Command, lines: list[dict[str, Any]] | None = None) -> CmdMsg:
    cmd: CmdMsg = {
        "cmd_id": command.id,
        "action": "dispense",
        "quantity": command.quantity,
        "order": command.order_id,
        "issued_at": command.issued_at,
        "expires_at": command.expires_at,
    }
    if lines and carries("cmd", "lines"):
        cmd["lines"] = cast("list[CmdLineMsg]", lines)
    return cmd


async def enqueue(
    s: AsyncSession, topic: str, payload: bytes, *, retain: bool, qos: int, now: int
) -> None:
    await enqueue_many(s, [(topic, payload)], retain=retain, qos=qos, now=now)


async def enqueue_many(
    s: AsyncSession, items: list[tuple[str, bytes]], *, retain: bool, qos: int, now: int
) -> None:
    """Outbox rows (topic, payload) in list order, with one statement."""
    rows = [
        {"topic": topic, "payload": payload, "retain": retain, "qos": qos, "created_at": now}
        for topic, payload in items
    ]
    await (await s.connection()).execute(_INSERT, rows)
    mark_written(s)


WROTE = "smartvend.outbox_written"  # in a session's ``info``: its transaction wrote rows


def mark_written(s: AsyncSession) -> None:
    """Say that ``s``'s transaction wrote outbox rows: its commit wakes the drain
    (``api.mqtt.bridge``), which commits that wrote none leave asleep. Every writer of
    the outbox calls it."""
    s.info[WROTE] = True


def wrote(session: Session) -> bool:
    """Whether the transaction just committed wrote outbox rows."""
    return bool(session.info.get(WROTE, False))


def forget(session: Session) -> None:
    """A new transaction has written nothing yet (the bridge calls it at each begin)."""
    session.info.pop(WROTE, None)


class _LookUp:
    """Marker: find the machine's active lock in the database."""


LOOK_UP = _LookUp()


async def machine_changed(
    s: AsyncSession,
    machine: Machine,
    now: int,
    *,
    desired: bool = True,
    lock: VendSession | _LookUp | None = LOOK_UP,
    version_bumped: bool = False,
) -> None:
    """Publish a new ``desired`` (version + 1) and the integrators' ``state``.

    Both are retained: a newer one supersedes whatever of this machine's is
    still waiting in the outbox, so a burst of changes to one machine leaves
    one row per topic (and one publish) instead of one per change. ``lock``
    is the machine's active lock when the caller knows it; ``version_bumped``
    when the caller already raised ``desired_version`` in its own UPDATE.
    """
    active = await sessions.active_session(s, machine.id) if isinstance(lock, _LookUp) else lock
    if desired:
        if active is None:  # planogram changes made during a session reach it at its end
            await planogram.refresh_desired(s, machine)
        await vend_changed(s, machine, active, now, version_bumped=version_bumped)
        return
    state = state_payload(machine, active is not None)
    encoded = [(topics.state(machine.id), messages.encode("state", state))]
    await supersede(s, [topic for topic, _payload in encoded])
    await enqueue_many(s, encoded, retain=True, qos=1, now=now)


SUPERSEDE_CHUNK = 5_000  # topics per DELETE (PostgreSQL: at most 32,767 bind parameters)
OUTBOX = table(OutboxMessage)
_INSERT = insert(OUTBOX)
_SUPERSEDE = PerDialect(
    lambda dialect: delete(OUTBOX).where(one_of(OUTBOX.c.topic, "topics", dialect))
)
# A machine's ``desired`` and ``state``, which every vend event shows, after a sale and
# the command when there are: the statements prepared for the driver
# (``api.infra.prepared``), one INSERT for each number of rows an event writes.
_PAIR = ("d", "s")
_SUPERSEDE_PAIR = Prepared(
    delete(OUTBOX).where(OUTBOX.c.topic.in_([bindparam(f"{n}_topic") for n in _PAIR]))
)
_COLUMNS = ("topic", "payload", "retain", "qos", "created_at")
_MOST_ROWS = 4  # a sale, the command, desired and state


def _insert_rows(count: int) -> Prepared:
    return Prepared(
        insert(OUTBOX).values(
            [{column: bindparam(f"r{n}_{column}") for column in _COLUMNS} for n in range(count)]
        )
    )


_INSERT_ROWS = {count: _insert_rows(count) for count in range(2, _MOST_ROWS + 1)}


async def supersede(s: AsyncSession, retained_topics: list[str]) -> None:
    """Drop unpublished messages on ``retained_topics`` (``desired``/``state`` only:
    commands are never coalesced). In chunks: a fleet-wide change (every machine's
    ``today`` at midnight) names more topics than PostgreSQL takes bind parameters."""
    conn = await s.connection()
    for start in range(0, len(retained_topics), SUPERSEDE_CHUNK):
        await conn.execute(
            _SUPERSEDE.on(s), {"topics": retained_topics[start : start + SUPERSEDE_CHUNK]}
        )


def vend_messages(
    machine: Machine,
    lock: VendSession | None,
    command: Command | None,
    clear: bool,
    sale: SalesMsg | None,
    command_lines: list[dict[str, Any]] | None = None,
) -> list[tuple[str, str | None, dict[str, Any] | None, bool]]:
    """What one vend event shows, in publish order: ``(kind, cmd_id, payload, retain)``.

    A sale, the command (sent, or cleared with an empty payload), then the
    machine's ``desired`` and ``state``. ``payload`` None is the empty one.
    """
    out: list[tuple[str, str | None, dict[str, Any] | None, bool]] = []
    if sale is not None:
        out.append(("sales", None, dict(sale), False))
    if command is not None:
        body = None if clear else dict(command_payload(command, command_lines))
        out.append(("cmd", command.id, body, True))
    out.append(("desired", None, dict(desired_payload(machine, lock)), True))
    out.append(("state", None, dict(state_payload(machine, lock is not None)), True))
    return out


def _encoded(kind: str, body: dict[str, Any] | None) -> bytes:
    """A vend message's bytes, ``None`` the empty one. The wire's field table checks and
    writes it in one step: here the kind is only known as text, so the typed
    ``messages.encode`` would add nothing but a hop."""
    return messages.CLEAR if body is None else wire.encode_in(messages.SPECS, kind, body)


async def vend_changed(
    s: AsyncSession,
    machine: Machine,
    lock: VendSession | None,
    now: int,
    *,
    command: Command | None = None,
    command_lines: list[dict[str, Any]] | None = None,
    clear: bool = False,
    sale: SalesMsg | None = None,
    version_bumped: bool = False,
) -> None:
    """One vend event's messages: a sale, the command sent (with ``command_lines``) or
    cleared, desired and state, from rows the caller has ready (with no lock, the
    machine's ``desired_slots`` already refreshed by ``planogram.refresh_desired``).

    ``desired``'s version goes up by one (unless the caller's own UPDATE raised
    it); its and ``state``'s unpublished predecessors are superseded.
    """
    if not version_bumped:
        machine.desired_version += 1
    made = vend_messages(machine, lock, command, clear, sale, command_lines)
    if sale is not None:
        sold = {"machine_id": machine.id, "order_id": sale["order"], "quantity": sale["quantity"]}
        event = {**sold, "amount": sale["amount"], "currency": sale["currency"]}
        await webhooks_out.emit(s, "sale", event, now)
    names = [topics.machine_topic(machine.id, kind, cmd_id) for kind, cmd_id, _b, _r in made]
    rows = [
        {
            "topic": topic,
            "payload": _encoded(kind, body),
            "retain": retain,
            "qos": 1,
            "created_at": now,
        }
        for topic, (kind, _cmd_id, body, retain) in zip(names, made, strict=True)
    ]
    # desired and state replace their predecessors; a sale and the command, never
    # coalesced, go first in the same INSERT, so they keep the lower ids
    await _SUPERSEDE_PAIR.all(
        s, {f"{n}_topic": row["topic"] for n, row in zip(_PAIR, rows[-2:], strict=True)}
    )
    await _INSERT_ROWS[len(rows)].all(
        s, {f"r{n}_{key}": value for n, row in enumerate(rows) for key, value in row.items()}
    )
    mark_written(s)

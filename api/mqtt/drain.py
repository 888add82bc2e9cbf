"""Messages out: the outbox in commit order, and the retained state from the database.

Services write outbox rows in the transaction that caused them; :func:`drain`
publishes them in id order and deletes them only once the broker acknowledged
them, so a crash or a lost connection re-sends instead of losing.
:func:`retained_pages` rebuilds every retained message the server owns
(``desired``, ``state``, unfinished ``cmd``) for a broker that lost them, a page of
machines at a time.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.lifecycle.states import COMMAND_FINAL, SessionStatus, ordered
from api.services import outgoing
from schema import messages, topics
from schema.errors import SchemaError
from schema.models import Command, Machine, OutboxMessage, VendSession, table

log = logging.getLogger(__name__)

BATCH = 100
# Messages in flight at once when publishing a long list: each publish must be
# acknowledged within the client's timeout, so republishing 10,000 machines'
# state cannot hand the client all 20,000 at once.
WINDOW = 500


OUTBOX = table(OutboxMessage)
# Core statements: the drain runs after every commit, and rows need no ORM objects.
_OLDEST = (
    select(OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.payload, OUTBOX.c.qos, OUTBOX.c.retain)
    .order_by(OUTBOX.c.id)
    .limit(bindparam("n"))
)
_PUBLISHED = delete(OUTBOX).where(OUTBOX.c.id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


# Publishes one message and returns once the broker acknowledged it (QoS 1).
Publish = Callable[[Outgoing], Awaitable[None]]


async def publish_in_order(publish: Publish, batch: list[Outgoing]) -> None:
    """Publish ``batch`` pipelined: sent in list order, all acknowledged on return.

    A message the client refuses outright (``ValueError``: a topic or payload no
    broker accepts) is logged and dropped so it cannot block what follows.
    """

    async def one(message: Outgoing) -> None:
        try:
            await publish(message)
        except ValueError:
            log.error("dropped an unpublishable message on %r", message.topic[:200])

    # Tasks start in creation order, so the client sends the messages in order;
    # one window after the other keeps that order.
    for start in range(0, len(batch), WINDOW):
        tasks = [asyncio.ensure_future(one(message)) for message in batch[start : start + WINDOW]]
        try:
            await asyncio.gather(*tasks)
        except BaseException:  # connection lost or cancelled: stop waiting for the others
            for task in tasks:
                task.cancel()
            raise


async def drain(
    db: async_sessionmaker[AsyncSession], publish: Publish, *, batch: int = BATCH
) -> int:
    """Publish every outbox row in id order; delete each batch once acknowledged."""
    total = 0
    while True:
        async with db() as s:
            rows = (await s.execute(_OLDEST, {"n": batch})).all()
        if not rows:
            return total
        await publish_in_order(
            publish,
            [Outgoing(row.topic, bytes(row.payload), row.qos, row.retain) for row in rows],
        )
        async with db.begin() as s:
            await (await s.connection()).execute(_PUBLISHED, {"ids": [row.id for row in rows]})
        total += len(rows)


PAGE = 1_000  # machines whose retained messages are read and published together


async def retained_pages(
    db: async_sessionmaker[AsyncSession], page: int | None = None
) -> AsyncGenerator[list[Outgoing], None]:
    """Every retained message the server owns, ``page`` machines at a time in id order
    (each one's current ``desired``, its version not bumped, and ``state``), each page
    read just before it is yielded; then the ``cmd`` of every unfinished command.

    Whoever publishes the pages may drain the outbox between them: the outbox holds at
    most one unpublished ``desired`` and ``state`` per machine, written with what the
    database now says, so neither order makes a machine's retained message go back."""
    size = page or PAGE
    after = ""
    while True:
        async with db() as s:
            machines = (
                await s.scalars(
                    select(Machine)
                    .where(Machine.removed_at.is_(None), Machine.id > after)
                    .order_by(Machine.id)
                    .limit(size)
                )
            ).all()
            if not machines:
                break
            locks = {
                lock.machine_id: lock
                for lock in (
                    await s.scalars(
                        select(VendSession).where(
                            VendSession.status == SessionStatus.ACTIVE,
                            VendSession.machine_id.in_([m.id for m in machines]),
                        )
                    )
                ).all()
            }
        yield _machine_messages(machines, locks)
        after = machines[-1].id
    async with db() as s:
        commands = (
            await s.scalars(
                select(Command)
                .where(Command.status.not_in(ordered(COMMAND_FINAL)))
                .order_by(Command.issued_at, Command.id)
            )
        ).all()
    yield _command_messages(commands)


async def retained_snapshot(db: async_sessionmaker[AsyncSession]) -> list[Outgoing]:
    """:func:`retained_pages` all at once."""
    return [message async for page in retained_pages(db) for message in page]


def _machine_messages(
    machines: Sequence[Machine], locks: Mapping[str, VendSession]
) -> list[Outgoing]:
    out: list[Outgoing] = []
    for machine in machines:
        lock = locks.get(machine.id)
        try:
            desired = messages.encode("desired", outgoing.desired_payload(machine, lock))
            state = messages.encode("state", outgoing.state_payload(machine, lock is not None))
        except SchemaError as exc:
            log.error("cannot republish machine %s: %s", machine.id, exc)
            continue
        out.append(Outgoing(topics.desired(machine.id), desired))
        out.append(Outgoing(topics.state(machine.id), state))
    return out


def _command_messages(commands: Sequence[Command]) -> list[Outgoing]:
    out: list[Outgoing] = []
    for command in commands:
        try:
            payload = messages.encode("cmd", outgoing.command_payload(command))
        except SchemaError as exc:
            log.error("cannot republish command %s: %s", command.id, exc)
            continue
        out.append(Outgoing(topics.cmd(command.machine_id, command.id), payload))
    return out

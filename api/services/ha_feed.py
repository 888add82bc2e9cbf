"""The retained messages Home Assistant (and integrators) read, kept current.

:class:`HomeAssistantFeed` owns two sets of retained topics: every machine's
``today`` (always) and, with ``HA_DISCOVERY_PREFIX`` set, the Home Assistant
discovery configs of the server and of every machine (``api.services.ha_discovery``).

* :meth:`HomeAssistantFeed.snapshot` is everything, for the bridge to publish on
  (re)connect, on a new leadership and when Home Assistant says ``online``.
* :meth:`HomeAssistantFeed.refresh` writes what changed since (a sale, a new
  firmware, a renamed, new or removed machine, local midnight) to the outbox in one
  transaction, superseding unpublished rows of the same topics; the drain
  publishes it. A machine gone from the database gets empty configs.
* :func:`machine_removed` writes a machine's empty configs (and clears its
  ``today``) in the caller's transaction: decommissioning calls it.

A refresh reads only the machines that may have changed, so its cost follows the
changes, not the fleet: those the outbox drain published a message about
(:meth:`HomeAssistantFeed.touched`: registration, a status with a new firmware,
removal), and those with a sale or a manual refund since the last read
(:mod:`api.services.feed_marks`). The whole feed is read again at local midnight
(every figure resets), when most of the fleet changed at once, and every
``feed_marks.WHOLE_READ_S`` anyway, which catches a change written around the
services.

Only the leader runs the feed (the bridge asks ``leads`` first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.clock import Clock, LocalCalendar
from api.services import feed_marks, ha_discovery, outgoing
from api.services.feed_marks import Marks
from api.views import daily_figures
from schema import messages, topics
from schema.errors import SchemaError
from schema.models import Machine

if TYPE_CHECKING:
    from schema.messages import TodayMsg

log = logging.getLogger(__name__)

Message = tuple[str, bytes]  # (topic, payload); an empty payload clears a retained topic
# (what a change is judged by, the payload: encoded, or figures encoded when sent)
Entry = tuple[object, "bytes | TodayMsg"]
Entries = dict[str, dict[str, Entry]]  # by owner (a machine id, or SERVER), then topic
SERVER = ""  # the owner of the server's own discovery config
# Machines described between turns of the event loop: the server's one loop also
# drains vends' commands and applies their results while the whole fleet is read.
YIELD_EVERY = 50

CHUNK = 500  # machine ids per query (PostgreSQL caps bind parameters)


def smartvend_version() -> str:
    try:
        return metadata.version("smartvend")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "0"


def _chunks(ids: Collection[str]) -> Iterable[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


@dataclass(frozen=True)
class Read:
    """Entries read for a refresh or a snapshot, not yet remembered."""

    entries: Entries
    owners: Collection[str]  # whose entries were read (absent from ``entries``: gone)
    whole: bool  # the whole feed
    marks: Marks
    taken: set[str]  # machines the drain had named, read here


@dataclass
class HomeAssistantFeed:
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    prefix: str | None  # HA_DISCOVERY_PREFIX; None: only the ``today`` topics
    calendar: LocalCalendar
    version: str = ""

    def __post_init__(self) -> None:
        self.version = self.version or smartvend_version()
        # What this process last published or enqueued: what a change is judged by.
        self._last: dict[str, dict[str, object]] = {}
        # Each machine's configs, encoded once while its view stays the same.
        self._configs: dict[str, tuple[ha_discovery.MachineView, list[Message]]] = {}
        self._touched: set[str] = set()  # machines the drain published about since
        self._marks = Marks()

    @property
    def birth_topic(self) -> str | None:
        """Where Home Assistant says ``online`` (None when discovery is off)."""
        return None if self.prefix is None else topics.discovery_status(self.prefix)

    def touched(self, topic: str) -> None:
        """A message on ``topic`` was published from the outbox (the bridge's drain calls
        this): a machine it names is read again at the next refresh. The feed's own
        ``today`` topics name nothing new."""
        try:
            kind, machine_id, _cmd = topics.parse(topic)
        except SchemaError:
            return
        if machine_id is not None and kind != "today":
            self._touched.add(machine_id)

    async def _read(self, machine_ids: Collection[str] | None, now: int) -> Entries:
        """The entries of every machine (None) or of ``machine_ids``, by owner."""
        day, since = daily_figures.local_day(now, self.calendar)
        async with self.db() as s:
            if machine_ids is None:
                machines = list(
                    (
                        await s.scalars(
                            select(Machine).where(Machine.removed_at.is_(None)).order_by(Machine.id)
                        )
                    ).all()
                )
                sold = await daily_figures.sold_since(s, self.calendar, since, now)
            else:
                machines, sold = [], {}
                for chunk in _chunks(machine_ids):
                    machines += (
                        await s.scalars(
                            select(Machine)
                            .where(Machine.removed_at.is_(None), Machine.id.in_(chunk))
                            .order_by(Machine.id)
                        )
                    ).all()
                    sold.update(await daily_figures.sold_since(s, self.calendar, since, now, chunk))
        out: Entries = {}
        if self.prefix is not None and machine_ids is None:
            out[SERVER] = {}
            for topic, config in ha_discovery.server_configs(self.prefix, self.version):
                encoded = ha_discovery.encode(config)
                out[SERVER][topic] = (encoded, encoded)
        for n, machine in enumerate(machines, 1):
            if n % YIELD_EVERY == 0:  # a large fleet's figures never hold the loop for long
                await asyncio.sleep(0)
            out[machine.id] = self._entries(machine, day, since, sold.get(machine.id, (0, 0)), now)
        return out

    def _entries(
        self, machine: Machine, day: str, since: int, sold: tuple[int, int], now: int
    ) -> dict[str, Entry]:
        entries: dict[str, Entry] = {}
        try:
            figures = daily_figures.today_payload(machine, day, since, sold, now)
            # ``ts`` says when the figures were read: a change is a change of the rest.
            same = tuple(value for key, value in figures.items() if key != "ts")
            entries[topics.today(machine.id)] = (same, figures)
            if self.prefix is not None:
                view = ha_discovery.view_of(machine)
                cached = self._configs.get(machine.id)
                if cached is None or cached[0] != view:
                    encoded = [
                        (topic, ha_discovery.encode(config))
                        for topic, config in ha_discovery.machine_configs(
                            self.prefix, view, self.version
                        )
                    ]
                    cached = self._configs[machine.id] = (view, encoded)
                entries.update((topic, (payload, payload)) for topic, payload in cached[1])
        except SchemaError as exc:
            log.error("cannot describe machine %s to Home Assistant: %s", machine.id, exc)
        return entries

    def _changes(self, now: Entries, owners: Collection[str], *, everything: bool) -> list[Message]:
        """What ``owners``' entries changed (all of them with ``everything``); a topic no
        longer there is cleared."""
        out = [
            (topic, messages.CLEAR)
            for owner in owners
            for topic in self._last.get(owner, {})
            if topic not in now.get(owner, {})
        ]
        for owner, entries in now.items():
            before = self._last.get(owner, {})
            for topic, (same, payload) in entries.items():
                if not everything and before.get(topic) == same:
                    continue
                try:
                    encoded = (
                        payload if isinstance(payload, bytes) else messages.encode("today", payload)
                    )
                except SchemaError as exc:
                    log.error("cannot publish %s: %s", topic, exc)
                    continue
                out.append((topic, encoded))
        return out

    async def _read_changed(self, *, everything: bool) -> Read:
        """What may have changed since the last read (or everything), read now."""
        now = self.clock.now()
        day, since = daily_figures.local_day(now, self.calendar)
        marks, taken = self._marks, self._touched
        self._touched = set()
        try:
            async with self.db() as s:  # first: a sale committed after this is seen next time
                found = await feed_marks.since(s, marks, self.calendar, since, now)
            changed: set[str] | None = None
            if not everything and not marks.whole_due(now, day):
                changed = taken | found.changed(marks)
                if len(changed) > len(self._last) // 2:
                    changed = None  # most of the fleet: one read of it all is cheaper
            entries = await self._read(changed, now) if changed is None or changed else {}
        except BaseException:
            self._touched |= taken  # read again next time
            raise
        owners = list(dict.fromkeys([*self._last, *entries])) if changed is None else changed
        new_marks = found.marks(now, day, now if changed is None else marks.whole_at)
        return Read(entries, owners, changed is None, new_marks, taken)

    def _remember(self, read: Read) -> None:
        """``read`` was published or enqueued: changes are judged against it from now on."""
        if read.whole:
            self._last = {}
            self._configs = {
                mid: found for mid, found in self._configs.items() if mid in read.entries
            }
        for owner in read.owners:
            entries = read.entries.get(owner)
            if entries is None:
                self._last.pop(owner, None)
                self._configs.pop(owner, None)
            else:
                self._last[owner] = {topic: same for topic, (same, _payload) in entries.items()}
        self._marks = read.marks

    async def snapshot(self) -> list[Message]:
        """Everything, to publish at once (and what has gone since, cleared)."""
        read = await self._read_changed(everything=True)
        changes = self._changes(read.entries, read.owners, everything=True)
        self._remember(read)
        return changes

    async def refresh(self) -> int:
        """Write what changed since the last snapshot or refresh to the outbox."""
        read = await self._read_changed(everything=False)
        changes = self._changes(read.entries, read.owners, everything=False)
        if changes:
            try:
                async with self.db.begin() as s:
                    await outgoing.supersede(s, [topic for topic, _payload in changes])
                    await outgoing.enqueue_many(
                        s, changes, retain=True, qos=1, now=self.clock.now()
                    )
            except BaseException:
                self._touched |= read.taken  # read again next time
                raise
        self._remember(read)
        return len(changes)


async def machine_removed(
    s: AsyncSession,
    machine_id: str,
    slot_ids: list[str],
    now: int,
    *,
    prefix: str | None,
) -> None:
    """Clear a decommissioned machine's ``today`` and (with a prefix) its discovery
    configs, in the caller's transaction: Home Assistant then removes the device."""
    cleared = [topics.today(machine_id)]
    if prefix is not None:
        cleared += ha_discovery.removal_topics(prefix, machine_id, slot_ids)
    await outgoing.supersede(s, cleared)
    await outgoing.enqueue_many(
        s, [(topic, messages.CLEAR) for topic in cleared], retain=True, qos=1, now=now
    )

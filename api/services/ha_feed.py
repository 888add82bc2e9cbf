"""The retained messages Home Assistant (and integrators) read, kept current.

:class:`HomeAssistantFeed` owns two sets of retained topics: every machine's
``today`` (always) and, with ``HA_DISCOVERY_PREFIX`` set, the Home Assistant
discovery configs of the server and of every machine (``api.services.ha_discovery``).

* :meth:`HomeAssistantFeed.snapshot` is everything, for the bridge to publish on
  (re)connect, on a new leadership and when Home Assistant says ``online``.
* :meth:`HomeAssistantFeed.refresh` writes what changed since (a sale, a new
  firmware, a renamed or new machine, local midnight) to the outbox in one
  transaction, superseding unpublished rows of the same topics; the drain
  publishes it. A machine gone from the database gets empty configs.
* :func:`machine_removed` writes a machine's empty configs (and clears its
  ``today``) in the caller's transaction: decommissioning calls it.

Only the leader runs the feed (the bridge asks ``leads`` first).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.clock import Clock, LocalCalendar
from api.services import ha_discovery, outgoing
from api.views import daily_figures
from schema import messages, topics
from schema.errors import SchemaError
from schema.models import Machine

if TYPE_CHECKING:
    from schema.messages import TodayMsg

log = logging.getLogger(__name__)

# Machines described between turns of the event loop: the server's one loop also
# drains vends' commands and applies their results while the whole fleet is read.
YIELD_EVERY = 50
Message = tuple[str, bytes]  # (topic, payload); an empty payload clears a retained topic
# (what a change is judged by, the payload: encoded, or figures encoded when sent)
Entry = tuple[object, "bytes | TodayMsg"]


def smartvend_version() -> str:
    try:
        return metadata.version("smartvend")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "0"


@dataclass
class HomeAssistantFeed:
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    prefix: str | None  # HA_DISCOVERY_PREFIX; None: only the ``today`` topics
    calendar: LocalCalendar
    version: str = ""

    def __post_init__(self) -> None:
        self.version = self.version or smartvend_version()
        self._last: dict[str, object] = {}  # what this process last published or enqueued
        self._configs: dict[ha_discovery.MachineView, list[Message]] = {}

    @property
    def birth_topic(self) -> str | None:
        """Where Home Assistant says ``online`` (None when discovery is off)."""
        return None if self.prefix is None else topics.discovery_status(self.prefix)

    async def current(self) -> dict[str, Entry]:
        """Every retained message of the feed as the database says now."""
        now = self.clock.now()
        day, since = daily_figures.local_day(now, self.calendar)
        async with self.db() as s:
            machines = (
                await s.scalars(
                    select(Machine).where(Machine.removed_at.is_(None)).order_by(Machine.id)
                )
            ).all()
            sold = await daily_figures.sold_since(s, self.calendar, since, now)
        out: dict[str, Entry] = {}
        if self.prefix is not None:
            for topic, config in ha_discovery.server_configs(self.prefix, self.version):
                encoded = ha_discovery.encode(config)
                out[topic] = (encoded, encoded)
        configs: dict[ha_discovery.MachineView, list[Message]] = {}
        for n, machine in enumerate(machines, 1):
            if n % YIELD_EVERY == 0:  # a large fleet's figures never hold the loop for long
                await asyncio.sleep(0)
            try:
                figures = daily_figures.today_payload(
                    machine, day, since, sold.get(machine.id, (0, 0)), now
                )
                # ``ts`` says when the figures were read: a change is a change of the rest.
                same = tuple(value for key, value in figures.items() if key != "ts")
                out[topics.today(machine.id)] = (same, figures)
                if self.prefix is not None:
                    view = ha_discovery.view_of(machine)
                    found = self._configs.get(view)
                    if found is None:
                        found = [
                            (topic, ha_discovery.encode(config))
                            for topic, config in ha_discovery.machine_configs(
                                self.prefix, view, self.version
                            )
                        ]
                    configs[view] = found
                    out.update((topic, (encoded, encoded)) for topic, encoded in found)
            except SchemaError as exc:
                log.error("cannot describe machine %s to Home Assistant: %s", machine.id, exc)
        self._configs = configs  # encoded once per machine while it stays the same
        return out

    def _changes(self, now: dict[str, Entry], *, everything: bool) -> list[Message]:
        out = [(topic, messages.CLEAR) for topic in self._last if topic not in now]
        for topic, (same, payload) in now.items():
            if not everything and self._last.get(topic) == same:
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

    def _remember(self, now: dict[str, Entry]) -> None:
        self._last = {topic: same for topic, (same, _payload) in now.items()}

    async def snapshot(self) -> list[Message]:
        """Everything, to publish at once (and what has gone since, cleared)."""
        now = await self.current()
        changes = self._changes(now, everything=True)
        self._remember(now)
        return changes

    async def refresh(self) -> int:
        """Write what changed since the last snapshot or refresh to the outbox."""
        now = await self.current()
        changes = self._changes(now, everything=False)
        if changes:
            async with self.db.begin() as s:
                await outgoing.supersede(s, [topic for topic, _payload in changes])
                await outgoing.enqueue_many(s, changes, retain=True, qos=1, now=self.clock.now())
        self._remember(now)
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

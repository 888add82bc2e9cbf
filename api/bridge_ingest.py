"""Device messages in: decode, then call one service, in order per machine.

Messages are sharded by machine id over a few worker queues, so one machine's
messages are handled in the order they arrived while different machines do not
wait on each other.  A malformed or hostile message is logged (topic and
machine) and skipped; nothing a device sends can stop the workers.
"""

import asyncio
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.errors import SmartVendError
from api.services.container import Services
from schema import messages, topics
from schema.errors import SchemaError

log = logging.getLogger(__name__)

DEFAULT_SHARDS = 8
QUEUE_SIZE = 1000
_SHOWN = 120  # characters of a hostile topic or payload worth putting in a log line


@dataclass
class IngestStats:
    received: int = 0  # messages taken in (valid or not)
    applied: int = 0  # handed to a service
    ignored: int = 0  # empty (a cleared retained topic) or not a device kind
    rejected: int = 0  # malformed topic or payload, refused by a service
    failed: int = 0  # a service raised something unexpected (a bug or the database)

    @property
    def done(self) -> int:
        return self.applied + self.ignored + self.rejected + self.failed


def _shown(value: bytes | str) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _topic(kind: str, machine_id: str, cmd_id: str | None) -> str:
    try:
        return topics.machine_topic(machine_id, kind, cmd_id)
    except SchemaError:
        return f"{kind} of {machine_id!r}"


class Ingest:
    """Per-machine ordered handling of device messages; ``run`` hosts the workers."""

    def __init__(
        self,
        services: Services,
        *,
        on_change: Callable[[], None] = lambda: None,
        shards: int = DEFAULT_SHARDS,
    ) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self.services = services
        self.stats = IngestStats()
        self._on_change = on_change
        self._queues: list[asyncio.Queue[tuple[str, str, str | None, bytes]]] = [
            asyncio.Queue(QUEUE_SIZE) for _ in range(shards)
        ]

    async def run(self) -> None:
        """Run the workers until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for queue in self._queues:
                tg.create_task(self._worker(queue))

    async def put(self, topic: str, payload: bytes) -> None:
        """Queue one received message (waits while its machine's queue is full)."""
        self.stats.received += 1
        try:
            kind, machine_id, cmd_id = topics.parse(topic)
        except SchemaError as exc:
            self._reject(topic, None, str(exc))
            return
        if machine_id is None or kind not in topics.DEVICE_KINDS:
            self.stats.ignored += 1
            log.debug("ignored a message on %s", topic)
            return
        shard = zlib.crc32(machine_id.encode()) % len(self._queues)
        await self._queues[shard].put((kind, machine_id, cmd_id, payload))

    async def join(self) -> None:
        """Wait until every queued message has been handled."""
        for queue in self._queues:
            await queue.join()

    async def _worker(self, queue: asyncio.Queue[tuple[str, str, str | None, bytes]]) -> None:
        while True:
            kind, machine_id, cmd_id, payload = await queue.get()
            try:
                await self.handle(kind, machine_id, cmd_id, payload)
            finally:
                queue.task_done()

    async def handle(self, kind: str, machine_id: str, cmd_id: str | None, payload: bytes) -> None:
        """Apply one message; logs and counts instead of raising."""
        if not payload:
            self.stats.ignored += 1
            return
        try:
            msg = messages.decode(kind, payload)
            changed = await self._dispatch(kind, machine_id, cmd_id, msg)
        except (SchemaError, SmartVendError) as exc:
            topic = _topic(kind, machine_id, cmd_id)
            self._reject(topic, machine_id, f"{exc} (payload {_shown(payload)})")
            return
        except Exception:
            self.stats.failed += 1
            topic = _topic(kind, machine_id, cmd_id)
            log.exception("handling %s from machine %s failed", topic, machine_id)
            return
        self.stats.applied += 1
        if changed:
            self._on_change()

    def _reject(self, topic: str, machine_id: str | None, why: str) -> None:
        self.stats.rejected += 1
        log.warning(
            "rejected a message on %s from machine %s: %s",
            _shown(topic),
            machine_id or "?",
            why,
        )

    async def _dispatch(
        self, kind: str, machine_id: str, cmd_id: str | None, msg: dict[str, Any]
    ) -> bool:
        """Call the service for ``kind``; True when outbox rows may have been written."""
        services = self.services
        if kind == "status":
            return await services.machines.apply_status(machine_id, msg)
        if kind == "reported":
            await services.machines.apply_reported(machine_id, msg)
            return True
        if kind == "telemetry":
            await services.machines.record_telemetry(machine_id, msg)
            return False
        if kind == "events":
            await services.machines.record_event(machine_id, msg)
            return False
        if kind == "results":
            if msg["cmd_id"] != cmd_id:
                raise SchemaError("results: cmd_id differs from the topic's")
            return await services.dispense.apply_result(
                machine_id, msg["cmd_id"], msg["status"], msg["dispensed"], msg.get("error")
            )
        raise SchemaError(f"{kind}: not a device message")  # pragma: no cover - put() filters

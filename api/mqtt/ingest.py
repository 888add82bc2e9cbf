"""Device messages in: two lanes, so a vend's results never queue behind telemetry.

- **Results** (``results/{cmd_id}``) are sharded by machine id over a few
  workers and applied one at a time, at once: a machine's reports are handled
  in the order they arrived, and a ``running`` report with ``dispensed``
  reaches the shopper's page as the item drops.
- **Everything else** (status, reported, telemetry, events) goes through one
  batch lane: up to ``batch_max`` messages, or whatever arrived within
  ``linger_s`` of the first, applied in one transaction with bulk statements
  (:mod:`api.services.device_batch`), in arrival order per machine.

Messages are typed from the moment they are decoded: the batch lane through
:func:`api.services.device_batch.decode` (one decoder per kind), the results lane
through :data:`HANDLERS` (one handler per kind), so a service never sees an
untyped payload.

A malformed or hostile message is logged (topic and machine) and skipped;
nothing a device sends can stop the workers. If the database refuses a whole
batch, its messages are applied one by one, so only the culprit is lost.
"""

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from api.errors import IllegalMove, InvalidMessage, SmartVendError, translated
from api.lifecycle.states import CommandStatus
from api.observability import metrics
from api.observability.collectors import observe_batch
from api.services import device_batch
from api.services.container import Services
from api.services.device_batch import DeviceMessage, apply_batch
from api.services.rollouts import is_update_command
from schema import messages, topics
from schema.errors import SchemaError

log = logging.getLogger(__name__)

DEFAULT_SHARDS = 8
QUEUE_SIZE = 1000  # per results shard
BATCH_QUEUE_SIZE = 50_000  # large: a full batch lane would stall the results behind it
BATCH_MAX = 250
LINGER_S = 0.05
_SHOWN = 120  # characters of a hostile topic or payload worth putting in a log line


@dataclass
class IngestStats:
    received: int = 0  # messages taken in (valid or not)
    applied: int = 0  # handed to a service
    ignored: int = 0  # empty (a cleared retained topic) or not a device kind
    rejected: int = 0  # malformed topic or payload, refused by a service
    failed: int = 0  # a service raised something unexpected (a bug or the database)
    batches: int = 0  # transactions of the batch lane
    batch_failures: int = 0  # batches the database refused (then applied one by one)

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


def _refused(exc: Exception) -> bool:
    """A message a service refused (logged and skipped), not a bug (an IllegalMove) or an outage."""
    return isinstance(exc, SmartVendError) and not isinstance(exc, IllegalMove)


class Ingest:
    """The two lanes of device messages; ``run`` hosts their workers."""

    def __init__(
        self,
        services: Services,
        *,
        shards: int = DEFAULT_SHARDS,
        batch_max: int = BATCH_MAX,
        linger_s: float = LINGER_S,
    ) -> None:
        if shards < 1 or batch_max < 1:
            raise ValueError("shards and batch_max must be at least 1")
        self.services = services
        self.stats = IngestStats()
        self._batch_max = batch_max
        self._linger_s = linger_s
        self._results: list[asyncio.Queue[tuple[str, str, str | None, bytes]]] = [
            asyncio.Queue(QUEUE_SIZE) for _ in range(shards)
        ]
        self._batched: asyncio.Queue[tuple[str, str, bytes, float]] = asyncio.Queue(
            BATCH_QUEUE_SIZE
        )  # with each message's arrival time
        self._full = asyncio.Event()  # the batch lane holds a whole batch
        self._counted: dict[str, Any] = {}  # received messages' counter, by kind

    async def run(self) -> None:
        """Run the workers until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for queue in self._results:
                tg.create_task(self._result_worker(queue))
            tg.create_task(self._batch_worker())

    def _count(self, kind: str) -> None:
        """The ``in`` messages metric, its child per kind looked up once."""
        counter = self._counted.get(kind)
        if counter is None:
            counter = self._counted[kind] = metrics.MQTT_MESSAGES.labels("in", kind)
        counter.inc()

    async def put(self, topic: str, payload: bytes) -> None:
        """Queue one received message (waits only while its lane is full); counts it in
        the ``in`` messages metric by kind."""
        self.stats.received += 1
        try:
            kind, machine_id, cmd_id = topics.parse(topic)
        except SchemaError as exc:
            self._count("invalid")
            self._reject(topic, None, str(exc))
            return
        self._count(kind)
        if machine_id is None or kind not in topics.DEVICE_KINDS:
            self.stats.ignored += 1
            log.debug("ignored a message on %s", topic)
            return
        if kind == "results":
            shard = zlib.crc32(machine_id.encode()) % len(self._results)
            await self._results[shard].put((kind, machine_id, cmd_id, payload))
        else:
            await self._batched.put((kind, machine_id, payload, time.monotonic()))
            if self._batched.qsize() >= self._batch_max:
                self._full.set()

    async def join(self) -> None:
        """Wait until every queued message has been handled."""
        await self._batched.join()
        for queue in self._results:
            await queue.join()

    async def join_results(self) -> None:
        """Wait until every queued result has been handled."""
        for queue in self._results:
            await queue.join()

    @property
    def backlog(self) -> int:
        """Messages waiting in the batch lane."""
        return self._batched.qsize()

    async def _result_worker(
        self, queue: asyncio.Queue[tuple[str, str, str | None, bytes]]
    ) -> None:
        while True:
            kind, machine_id, cmd_id, payload = await queue.get()
            try:
                await self.handle(kind, machine_id, cmd_id, payload)
            finally:
                queue.task_done()

    async def _batch_worker(self) -> None:
        """A batch: the first message, and what else arrives within ``linger_s`` (less
        once a whole batch waits); one timer per batch, not one per message."""
        queue = self._batched
        while True:
            items = [await queue.get()]
            try:
                if queue.qsize() + 1 < self._batch_max:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._linger_s):
                            await self._full.wait()
                while len(items) < self._batch_max and not queue.empty():
                    items.append(queue.get_nowait())
                await self.apply_batch([item[:3] for item in items])
                observe_batch(len(items), items[0][3], time.monotonic())
            finally:
                for _ in items:
                    queue.task_done()

    async def apply_batch(self, items: list[tuple[str, str, bytes]]) -> None:
        """Decode ``items``, apply them in one transaction; logs and counts, never raises."""
        decoded: list[DeviceMessage] = []
        raw: list[bytes] = []
        for kind, machine_id, payload in items:
            if not payload:
                self.stats.ignored += 1
                continue
            try:
                decoded.append(device_batch.decode(kind, machine_id, payload))
                raw.append(payload)
            except SchemaError as exc:
                topic = _topic(kind, machine_id, None)
                self._reject(topic, machine_id, f"{exc} (payload {_shown(payload)})")
        if not decoded:
            return
        try:
            await apply_batch(self.services.ctx, decoded)
        except Exception:
            self.stats.batch_failures += 1
            log.exception(
                "a batch of %d device messages failed; applying them one by one", len(decoded)
            )
            for item, payload in zip(decoded, raw, strict=True):
                await self._apply_one(item, payload)
            return
        self.stats.batches += 1
        self.stats.applied += len(decoded)

    async def _apply_one(self, item: DeviceMessage, payload: bytes) -> None:
        try:
            await self._dispatch(item.kind, item.machine_id, None, payload)
        except Exception as exc:
            if _refused(exc):
                self._reject(_topic(item.kind, item.machine_id, None), item.machine_id, str(exc))
                return
            self.stats.failed += 1
            topic = _topic(item.kind, item.machine_id, None)
            log.exception("handling %s from machine %s failed", topic, item.machine_id)
            return
        self.stats.applied += 1

    async def handle(self, kind: str, machine_id: str, cmd_id: str | None, payload: bytes) -> None:
        """Apply one message; logs and counts instead of raising."""
        if not payload:
            self.stats.ignored += 1
            return
        try:
            if kind == "results" and is_update_command(cmd_id):  # firmware updates
                await self.services.rollouts.apply_result(machine_id, str(cmd_id), payload)
            else:
                await self._dispatch(kind, machine_id, cmd_id, payload)
        except Exception as exc:
            if _refused(exc):
                topic = _topic(kind, machine_id, cmd_id)
                self._reject(topic, machine_id, f"{exc} (payload {_shown(payload)})")
                return
            self.stats.failed += 1
            topic = _topic(kind, machine_id, cmd_id)
            log.exception("handling %s from machine %s failed", topic, machine_id)
            return
        self.stats.applied += 1

    def _reject(self, topic: str, machine_id: str | None, why: str) -> None:
        self.stats.rejected += 1
        log.warning(
            "rejected a message on %s from machine %s: %s",
            _shown(topic),
            machine_id or "?",
            why,
        )

    async def _dispatch(
        self, kind: str, machine_id: str, cmd_id: str | None, payload: bytes
    ) -> None:
        """Decode ``payload`` as ``kind`` and call its service (the commit wakes the drain)."""
        handler = HANDLERS.get(kind)
        if handler is None:  # pragma: no cover - put() filters
            raise InvalidMessage(f"{kind}: not a device message")
        with translated():
            await handler(self.services, machine_id, cmd_id, payload)


# One handler per device message kind: decode to the kind's typed message, call its service.
Handler = Callable[[Services, str, str | None, bytes], Awaitable[object]]


async def _status(services: Services, machine_id: str, _cmd: str | None, payload: bytes) -> bool:
    return await services.machines.apply_status(machine_id, messages.decode("status", payload))


async def _reported(services: Services, machine_id: str, _cmd: str | None, payload: bytes) -> None:
    await services.machines.apply_reported(machine_id, messages.decode("reported", payload))


async def _telemetry(services: Services, machine_id: str, _cmd: str | None, payload: bytes) -> None:
    await services.machines.record_telemetry(machine_id, messages.decode("telemetry", payload))


async def _events(services: Services, machine_id: str, _cmd: str | None, payload: bytes) -> None:
    await services.machines.record_event(machine_id, messages.decode("events", payload))


async def _results(services: Services, machine_id: str, cmd_id: str | None, payload: bytes) -> bool:
    msg = messages.decode("results", payload)
    if msg["cmd_id"] != cmd_id:
        raise SchemaError("results: cmd_id differs from the topic's")
    status = CommandStatus(msg["status"])
    error = msg.get("error")
    return await services.dispense.apply_result(
        machine_id, msg["cmd_id"], status, msg["dispensed"], error, msg.get("lines")
    )


HANDLERS: dict[str, Handler] = {
    "status": _status,
    "reported": _reported,
    "telemetry": _telemetry,
    "events": _events,
    "results": _results,
}

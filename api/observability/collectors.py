"""Feeding the metrics: pool events, MQTT counts, figures read from the database."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.lifecycle.states import CommandStatus, RefundStatus
from api.observability import metrics
from schema import topics
from schema.errors import SchemaError
from schema.models import Command, OutboxMessage, Refund

if TYPE_CHECKING:  # the broker (and amqtt) is imported only where it runs
    from broker.embedded import EmbeddedBroker


def mqtt_kind(topic: str) -> str:
    """The topic's kind (``status``, ``cmd``, ``server_status`` ...), or ``invalid``."""
    try:
        return topics.parse(topic)[0]
    except SchemaError:
        return "invalid"


def count_mqtt(direction: str, topic: str) -> None:
    metrics.MQTT_MESSAGES.labels(direction, mqtt_kind(topic)).inc()


def watch_pool(engine: AsyncEngine) -> Callable[[], None]:
    """Follow the engine's pool (open and checked-out connections); returns the un-watcher."""
    pool = engine.sync_engine.pool
    checked_out = metrics.DB_POOL.labels("checked_out")
    opened = metrics.DB_POOL.labels("open")

    def on_connect(*_args: Any) -> None:
        opened.inc()

    def on_close(*_args: Any) -> None:
        opened.dec()

    def on_checkout(*_args: Any) -> None:
        checked_out.inc()

    def on_checkin(*_args: Any) -> None:
        checked_out.dec()

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("connect", on_connect),
        ("close", on_close),
        ("checkout", on_checkout),
        ("checkin", on_checkin),
    ]
    for name, hook in hooks:
        event.listen(pool, name, hook)

    def unwatch() -> None:
        for name, hook in hooks:
            event.remove(pool, name, hook)

    return unwatch


def observe_batch(size: int, oldest_arrival: float, now: float) -> None:
    """One batch of device messages committed: its size and its oldest message's lag."""
    metrics.INGEST_BATCH.observe(size)
    metrics.INGEST_LAG.observe(max(0.0, now - oldest_arrival))


def read_broker_figures(broker: "EmbeddedBroker") -> None:
    """Set the embedded broker's gauges: its drop and refusal counters, its clients."""
    for event_name, count in broker.stats().items():
        metrics.BROKER_EVENTS.labels(event_name).set(count)
    metrics.BROKER_CLIENTS.set(len(broker.connected_clients()))


async def read_database_figures(db: async_sessionmaker[AsyncSession], now: int) -> None:
    """Set the gauges that the database knows best: outbox, vends, refunds."""
    async with db() as s:
        depth, oldest = (
            await s.execute(select(func.count(), func.min(OutboxMessage.created_at)))
        ).one()
        vends = dict(
            (await s.execute(select(Command.status, func.count()).group_by(Command.status))).all()
        )
        refunds = dict(
            (await s.execute(select(Refund.status, func.count()).group_by(Refund.status))).all()
        )
    metrics.OUTBOX_DEPTH.set(depth)
    metrics.OUTBOX_OLDEST_AGE.set(0 if oldest is None else max(0, now - oldest))
    for command in CommandStatus:
        metrics.VENDS.labels(command).set(vends.get(command, 0))
    for refund in RefundStatus:
        metrics.REFUNDS.labels(refund).set(refunds.get(refund, 0))

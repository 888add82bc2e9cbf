"""What a committed transaction changed, published on the notifier's channels.

A flush notes the channels its objects touch (an order and what hangs off it,
machines, locks); bulk statements name theirs with :func:`touch`. Nothing is
published until the transaction commits, and a rollback forgets it all.
"""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from api.infra.changes import Notifier
from api.infra.db import session_class
from schema.models import Command, Machine, Order, Payment, Refund, VendSession

FLEET = "fleet"
_KEY = "smartvend_channels"


def order_channel(order_id: str) -> str:
    return f"order:{order_id}"


def touch(session: AsyncSession | Session, *channels: str) -> None:
    """Publish ``channels`` when ``session``'s transaction commits."""
    session.info.setdefault(_KEY, set()).update(channels)


def _channels_of(objects: Iterable[Any]) -> set[str]:
    found: set[str] = set()
    for obj in objects:
        if isinstance(obj, Order):
            found.update((order_channel(obj.id), FLEET))
        elif isinstance(obj, (Payment, Refund)):
            found.add(order_channel(obj.order_id))
        elif isinstance(obj, Command):
            found.update((order_channel(obj.order_id), FLEET))
        elif isinstance(obj, (Machine, VendSession)):
            found.add(FLEET)
    return found


class CommitFeed:
    """Listens on a session factory's sessions; publishes after each commit."""

    def __init__(self, db: async_sessionmaker[AsyncSession], notifier: Notifier) -> None:
        self._sessions = session_class(db)
        self._notifier = notifier

    def start(self) -> None:
        event.listen(self._sessions, "after_flush", self._after_flush)
        event.listen(self._sessions, "after_commit", self._after_commit)
        event.listen(self._sessions, "after_rollback", self._after_rollback)

    def stop(self) -> None:
        event.remove(self._sessions, "after_flush", self._after_flush)
        event.remove(self._sessions, "after_commit", self._after_commit)
        event.remove(self._sessions, "after_rollback", self._after_rollback)

    def _after_flush(self, session: Session, _context: Any) -> None:
        changed = [*session.new, *session.deleted]
        changed.extend(obj for obj in session.dirty if session.is_modified(obj))
        channels = _channels_of(changed)
        if channels:
            touch(session, *channels)

    def _after_commit(self, session: Session) -> None:
        channels = session.info.pop(_KEY, None)
        for channel in sorted(channels or ()):
            self._notifier.publish(channel)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_KEY, None)

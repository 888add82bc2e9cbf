"""Where a PUBLISH goes: access checks, the subscription index, retained messages,
offline queues, and the counters of what was dropped. Mixed into ``GuardedBroker``.

* Every delivery is checked with ``acl.allowed(..., "receive", topic)``; retained
  messages are served only for the session's own filters, so one client's retained
  command never reaches another.
* Subscriptions and retained topics are indexed in :class:`TopicTree` tries, so a
  publish does not scan every filter and a subscribe does not scan every retained
  message; each session also knows its own filters, so ending it does not scan all.
* Deliveries use min(publish QoS, subscription QoS); a refused or ``$`` publish is
  dropped without closing the connection, an invalid topic closes it.
* Only the contract's retained topics keep a retained message (``acl.may_retain``);
  publishes over the payload limit are dropped; an offline persistent session keeps
  at most ``MAX_QUEUED`` messages. Each drop is counted in :class:`BrokerStats`.
"""

import asyncio
import functools
import logging
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from amqtt.broker import RetainedApplicationMessage
from amqtt.contexts import Action
from amqtt.session import OutgoingApplicationMessage, Session

from broker import acl
from broker.amqtt_handler import Handler
from broker.amqtt_wire import encode_length, short
from broker.principals import Principal
from broker.topictree import TopicTree

log = logging.getLogger(__name__)

PRINCIPAL = "smartvend.principal"
FILTERS = "smartvend.filters"  # the session's own subscriptions: filter -> QoS
SUBACK_FAILURE = 0x80
MAX_QUEUED = 1000  # messages kept per offline persistent session (as Mosquitto's default)
_ACL_CACHE = 8192


@functools.lru_cache(maxsize=_ACL_CACHE)
def _allowed(principal: Principal, action: str, topic: str) -> bool:
    """``acl.allowed``, memoised: a pure function of its (hashable) arguments."""
    return acl.allowed(principal, action, topic)


@dataclass
class BrokerStats:
    """What the broker refused or dropped since it started."""

    oversize_dropped: int = 0  # publishes over the payload limit
    retain_refused: int = 0  # retained publishes on topics that keep nothing
    connect_timeouts: int = 0  # connections that sent no CONNECT in time
    connects_refused: int = 0  # bad or unacceptable CONNECTs (credentials, protocol, size)
    queue_dropped: int = 0  # messages for a session too far behind (offline or connected)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _filters_of(session: Session) -> dict[str, int]:
    found = session.attributes.get(FILTERS)
    if found is None:
        found = session.attributes[FILTERS] = {}
    return found  # type: ignore[no-any-return]


def principal_of(session: Session) -> Principal | None:
    found = session.attributes.get(PRINCIPAL)
    return found if isinstance(found, Principal) else None


class Subscriptions(dict[str, list[tuple[Session, int]]]):
    """amqtt's filter -> subscribers map, with a short repr.

    amqtt logs ``repr(self._subscriptions)`` at debug level after every SUBSCRIBE,
    building the string even when debug is off: with every session in it, that made
    each subscribe cost time proportional to the whole fleet.
    """

    def __repr__(self) -> str:
        return f"<{len(self)} subscription filters>"


class Routing:
    """The routing half of ``GuardedBroker`` (amqtt's ``Broker`` supplies the state)."""

    _subscriptions: dict[str, list[tuple[Session, int]]]
    _retained_messages: dict[str, RetainedApplicationMessage]
    _broadcast_queue: "asyncio.Queue[dict[str, Any]]"
    _filters: TopicTree
    _retained_topics: TopicTree
    _max_payload: int
    stats: "BrokerStats"

    if TYPE_CHECKING:

        def _get_handler(self, session: Session) -> Any: ...

    # -- access checks -----------------------------------------------------------

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        principal = principal_of(session)
        return principal is not None and _allowed(principal, str(action.value), topic)

    def _may_receive(self, session: Session, topic: str) -> bool:
        principal = principal_of(session)
        return principal is not None and _allowed(principal, "receive", topic)

    def on_publish(
        self, session: Session, handler: Handler, topic: str, data: bytes, qos: int, retain: bool
    ) -> None:
        """A PUBLISH read from ``session``'s connection: check it, route it, keep it."""
        if not acl.is_valid_topic(topic):
            log.info("%s sent an invalid topic %s; closing", session.client_id, short(topic))
            handler.lose_connection()  # [MQTT-3.3.2-2]
            return
        principal = principal_of(session)
        if principal is None or not _allowed(principal, "publish", topic):
            log.debug("dropped publish by %s to %s", session.client_id, short(topic))
            return
        if len(data) > self._max_payload:
            self.stats.oversize_dropped += 1
            log.info(
                "dropped a publish of %d bytes (limit %d) by %s to %s",
                len(data),
                self._max_payload,
                session.client_id,
                short(topic),
            )
            return
        self._route(topic, data, qos)
        if retain:
            self._keep(topic, data, qos)

    def dropped_oversize(self) -> None:
        """A connection sent a packet far over the limit (and is being closed)."""
        self.stats.oversize_dropped += 1

    async def on_subscribe(
        self, session: Session, handler: Handler, packet_id: int, filters: list[tuple[str, int]]
    ) -> None:
        codes = [await self.add_subscription(subscription, session) for subscription in filters]
        suback = packet_id.to_bytes(2, "big") + bytes(codes)
        handler.write(b"\x90" + encode_length(len(suback)) + suback)
        for subscription, code in zip(filters, codes, strict=True):
            if code != SUBACK_FAILURE:
                await self._publish_retained_messages_for_subscription(
                    (subscription[0], code), session
                )

    async def on_unsubscribe(
        self, session: Session, handler: Handler, packet_id: int, filters: list[str]
    ) -> None:
        for topic_filter in filters:
            self._del_subscription(topic_filter, session)
        handler.write(b"\xb0\x02" + packet_id.to_bytes(2, "big"))

    # -- subscriptions index -----------------------------------------------------

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        topic_filter, qos = subscription
        if not await self._topic_filtering(session, topic_filter, Action.SUBSCRIBE):
            return SUBACK_FAILURE
        mine = _filters_of(session)
        subscribers = self._subscriptions.setdefault(topic_filter, [])
        if topic_filter in mine:  # a repeated SUBSCRIBE replaces the QoS [MQTT-3.8.4-3]
            subscribers[:] = [(s, q) for s, q in subscribers if s is not session]
        subscribers.append((session, qos))
        mine[topic_filter] = qos
        self._filters.add(topic_filter)
        return qos

    def _del_subscription(self, a_filter: str, session: Session) -> int:
        mine = _filters_of(session)
        if mine.pop(a_filter, None) is None:
            return 0
        subscribers = self._subscriptions.get(a_filter, [])
        subscribers[:] = [(s, q) for s, q in subscribers if s is not session]
        if not subscribers:
            self._subscriptions.pop(a_filter, None)
            self._filters.discard(a_filter)
        return 1

    async def _del_all_subscriptions(self, session: Session) -> None:
        for topic_filter in list(_filters_of(session)):
            self._del_subscription(topic_filter, session)

    # -- delivery ------------------------------------------------------------------

    async def _run_broadcast(
        self, running_tasks: deque[asyncio.Task[OutgoingApplicationMessage]]
    ) -> None:
        # Only wills and amqtt's internal broadcasts still come through the queue.
        broadcast = await self._broadcast_queue.get()
        topic = broadcast["topic"]
        if topic:
            pub_qos = broadcast.get("pub_qos", broadcast.get("qos"))
            self._route(topic, broadcast["data"], pub_qos)

    def _route(self, topic: str, data: bytes, pub_qos: int | None) -> None:
        """Hand ``topic`` to every session subscribed to it and allowed to receive it."""
        targets: dict[int, tuple[Session, int]] = {}
        for topic_filter in self._filters.filters_matching(topic):
            for session, sub_qos in self._subscriptions.get(topic_filter, ()):
                qos = sub_qos if pub_qos is None else min(int(pub_qos), sub_qos)
                known = targets.get(id(session))
                if known is None or known[1] < qos:
                    targets[id(session)] = (session, qos)
        for session, qos in targets.values():
            if not self._may_receive(session, topic):
                log.debug("%s may not receive %r", session.client_id, topic)
                continue
            if session.transitions.state != "connected":
                if not session.clean_session and qos > 0:
                    self._queue(session, topic, data, qos)
                continue
            handler = self._get_handler(session)
            if isinstance(handler, Handler) and not handler.send(topic, data, qos, retain=False):
                self.stats.queue_dropped += 1  # the client has fallen far behind

    async def _publish_session_retained_messages(self, session: Session) -> None:
        """Messages queued while a persistent session was offline: RETAIN=0, in order."""
        handler = self._get_handler(session)
        queue = session.retained_messages
        while isinstance(handler, Handler) and not queue.empty():
            queued = queue.get_nowait()
            handler.send(queued.topic, queued.data, int(queued.qos or 0), retain=False)

    async def retain_message(
        self,
        source_session: Session | None,
        topic_name: str | None,
        data: bytes | bytearray | None,
        qos: int | None = None,
    ) -> None:
        if topic_name is not None:
            self._keep(topic_name, bytes(data or b""), qos)

    def _keep(self, topic: str, data: bytes, qos: int | None) -> None:
        """Store (or with an empty payload, clear) the retained message of ``topic``."""
        if not acl.may_retain(topic):
            if data:
                self.stats.retain_refused += 1
                log.debug("not retaining a message on %s", short(topic))
            return
        if data:  # [MQTT-3.3.1-5]
            self._retained_messages[topic] = RetainedApplicationMessage(None, topic, data, qos)
            self._retained_topics.add(topic)
        else:  # [MQTT-3.3.1-10]
            self._retained_messages.pop(topic, None)
            self._retained_topics.discard(topic)

    def _queue(self, session: Session, topic: str, data: bytes, qos: int) -> None:
        """Keep a QoS 1/2 message for an offline persistent session [MQTT-3.1.2-5]."""
        backlog = session.retained_messages
        if backlog.qsize() >= MAX_QUEUED:
            self.stats.queue_dropped += 1
            return
        backlog.put_nowait(RetainedApplicationMessage(None, topic, data, qos))

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter, sub_qos = subscription
        handler = self._get_handler(session)
        if not isinstance(handler, Handler):
            return
        for topic in self._retained_topics.topics_matching(topic_filter):
            retained = self._retained_messages.get(topic)
            if retained is None or not self._may_receive(session, topic):
                continue
            qos = sub_qos if retained.qos is None else min(sub_qos, retained.qos)
            handler.send(topic, retained.data, qos, retain=True)

"""amqtt's ``Broker`` with SmartVend's authentication and access rules built in.

amqtt 0.12.1 (pinned) is used as the MQTT engine; this subclass replaces the parts
of it that are unsafe for a fleet:

* Credentials are checked right after CONNECT is read, before the session cache is
  touched, so a failed login can never delete or replace a live client's session.
  The client id becomes the username (as ``use_username_as_clientid`` on Mosquitto).
* Every delivery is checked with ``acl.allowed(..., "receive", topic)``; retained
  messages are served only for the session's own filters, from a snapshot, so one
  client's retained command never reaches another and churn cannot break the loop.
* Keepalive is enforced: nothing received for keepalive x grace seconds closes the
  connection as abnormal, which publishes the client's will. Reads are timestamped
  and one sweep checks every connection, instead of amqtt's timeout task per packet
  read and timer per packet sent.
* Subscriptions and retained topics are indexed in :class:`TopicTree` tries, so a
  publish does not scan every filter and a subscribe does not scan every retained
  message.
* A publish is routed from its sender's message loop, not through amqtt's global
  broadcast queue and its task per message; access decisions are memoised (the
  policy is pure and devices repeat their topics).
* Deliveries use min(publish QoS, subscription QoS); a refused or ``$`` publish is
  dropped without stopping the client's message loop.
"""

import asyncio
import functools
import logging
import socket
from collections import deque
from typing import Any, NoReturn

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker, Server
from amqtt.contexts import Action
from amqtt.errors import MQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, SERVER_UNAVAILABLE, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import OutgoingApplicationMessage, Session
from transitions import MachineError

from broker import acl
from broker.principals import Authenticator, Principal
from broker.topictree import TopicTree

log = logging.getLogger(__name__)

PRINCIPAL = "smartvend.principal"
KEEPALIVE = "smartvend.keepalive"  # seconds of silence after which the link is dropped
SUBACK_FAILURE = 0x80
_KICK_TIMEOUT = 5.0
_SWEEP_S = 0.25  # how often silent connections are looked for
_ACL_CACHE = 8192


@functools.lru_cache(maxsize=_ACL_CACHE)
def _allowed(principal: Principal, action: str, topic: str) -> bool:
    """``acl.allowed``, memoised: a pure function of its (hashable) arguments."""
    return acl.allowed(principal, action, topic)


class _TimedReader(ReaderAdapter):  # type: ignore[misc]
    """A reader that notes when it last received bytes (for the keepalive sweep)."""

    def __init__(self, inner: ReaderAdapter) -> None:
        self._inner = inner
        self._loop = asyncio.get_running_loop()
        self.last_read = self._loop.time()

    async def read(self, n: int = -1) -> bytes:
        data: bytes = await self._inner.read(n)
        self.last_read = self._loop.time()
        return data

    def feed_eof(self) -> None:
        self._inner.feed_eof()


class _Handler(BrokerProtocolHandler):  # type: ignore[misc]
    """Protocol handler that treats a keepalive read timeout as a lost connection."""

    finished: asyncio.Event

    def handle_read_timeout(self) -> None:
        log.info("keepalive expired for %s", self.session.client_id if self.session else None)
        self.lose_connection()

    def lose_connection(self) -> None:
        """End the client's message loop as if the network dropped (the will fires)."""
        waiter = self._disconnect_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def _close_quietly(writer: WriterAdapter) -> None:
    try:
        await writer.close()
    except (OSError, RuntimeError):
        log.debug("closing a client connection failed", exc_info=True)


def principal_of(session: Session) -> Principal | None:
    found = session.attributes.get(PRINCIPAL)
    return found if isinstance(found, Principal) else None


class _Subscriptions(dict[str, list[tuple[Session, int]]]):
    """amqtt's filter -> subscribers map, with a short repr.

    amqtt logs ``repr(self._subscriptions)`` at debug level after every SUBSCRIBE,
    building the string even when debug is off: with every session in it, that made
    each subscribe cost time proportional to the whole fleet.
    """

    def __repr__(self) -> str:
        return f"<{len(self)} subscription filters>"


class GuardedBroker(Broker):  # type: ignore[misc]
    """amqtt Broker that authenticates with an :class:`Authenticator` and applies ``acl``."""

    def __init__(
        self,
        config: dict[str, Any],
        authenticator: Authenticator,
        *,
        keepalive_grace: float,
        connect_timeout: float,
    ) -> None:
        super().__init__(config)
        self._subscriptions = _Subscriptions()
        self._authenticator = authenticator
        self._keepalive_grace = keepalive_grace
        self._connect_timeout = connect_timeout
        self._filters = TopicTree()
        self._retained_topics = TopicTree()
        self._closing = False
        self._deliveries: set[asyncio.Future[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._closing = False
        self._filters.clear()
        self._retained_topics.clear()
        await super().start()
        self._sweeper = asyncio.create_task(self._sweep_silent())

    async def _cleanup_session(self, client_id: str) -> None:
        # amqtt's session monitor picks disconnected sessions, then awaits between
        # removals: a client may have reconnected meanwhile. Never remove a live one
        # unless the broker is shutting down.
        session, _ = self._sessions.get(client_id, (None, None))
        if not self._closing and session is not None and session.transitions.state == "connected":
            return
        await super()._cleanup_session(client_id)

    async def shutdown(self) -> None:
        self._closing = True
        pending = [*self._deliveries, *([self._sweeper] if self._sweeper else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._sweeper = None
        # Stop accepting first and close websocket connections: amqtt otherwise waits
        # for a websocket reader that ignores cancellation until the peer goes away.
        for server in list(self._servers.values()):
            if server.instance is not None:
                server.instance.close()
        await super().shutdown()

    def connected_clients(self) -> set[str]:
        return {
            client_id
            for client_id, (session, _) in list(self._sessions.items())
            if session.transitions.state == "connected"
        }

    async def kick(self, client_id: str) -> bool:
        """Close a connected client's connection as abnormal (its will fires)."""
        session, handler = self._sessions.get(client_id, (None, None))
        if session is None or not isinstance(handler, _Handler):
            return False
        if session.transitions.state != "connected":
            return False
        handler.lose_connection()
        finished = getattr(handler, "finished", None)
        if finished is not None:
            try:
                await asyncio.wait_for(finished.wait(), _KICK_TIMEOUT)
            except TimeoutError:
                log.warning("client %s did not stop within %ss", client_id, _KICK_TIMEOUT)
        return True

    # -- connection --------------------------------------------------------------

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await super().stream_connected(reader, writer, listener_name)

    async def _refuse(self, writer: WriterAdapter, code: int, why: str) -> NoReturn:
        try:
            await ConnackPacket.build(0, code).to_stream(writer)
        except (OSError, RuntimeError):
            log.debug("could not send CONNACK refusal", exc_info=True)
        await _close_quietly(writer)
        raise MQTTError(why)

    async def _authenticate_connect(self, session: Session, writer: WriterAdapter) -> Principal:
        if not session.username or session.password is None:
            await self._refuse(writer, NOT_AUTHORIZED, "anonymous connection refused")
        username, password = str(session.username), str(session.password)
        try:
            principal = await self._authenticator.authenticate(
                username, password, session.client_id or ""
            )
        except Exception:
            log.exception("authenticator failed for %r", username)
            await self._refuse(writer, SERVER_UNAVAILABLE, "authenticator failed")
        if principal is None:
            log.info("refused CONNECT from %r (client id %r)", username, session.client_id)
            await self._refuse(writer, NOT_AUTHORIZED, "bad credentials")
        if session.will_flag and not acl.allowed(principal, "publish", session.will_topic or ""):
            log.info(
                "refused CONNECT from %r: will topic %r not allowed", username, session.will_topic
            )
            await self._refuse(writer, NOT_AUTHORIZED, "will topic not allowed")
        return principal

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, session = await asyncio.wait_for(
                _Handler.init_from_connect(reader, writer, self.plugins_manager),
                self._connect_timeout,
            )
        except Exception as exc:  # garbage, a timeout or a protocol error: drop the socket
            log.info("no valid CONNECT from %s:%s: %r", remote_address, remote_port, exc)
            await _close_quietly(writer)
            raise MQTTError(f"no valid CONNECT: {exc!r}") from exc

        principal = await self._authenticate_connect(session, writer)
        client_id = principal.username
        session.client_id = client_id
        session.attributes[PRINCIPAL] = principal
        await self.kick(client_id)  # take-over: the old connection ends first

        if session.clean_session:
            await self._delete_session(client_id)
            session.parent = 0
        elif client_id in self._sessions:
            existing, _ = self._sessions[client_id]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain"):
                setattr(existing, name, getattr(session, name))
            existing.keep_alive = session.keep_alive
            existing.username = session.username
            existing.password = session.password
            existing.attributes[PRINCIPAL] = principal
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        # The sweep enforces keepalive; with keep_alive 0 amqtt arms no timer per packet.
        session.attributes[KEEPALIVE] = session.keep_alive * self._keepalive_grace
        session.keep_alive = 0
        return handler, session

    async def _sweep_silent(self) -> None:
        """Drop connections silent for longer than their keepalive x grace."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_SWEEP_S)
            now = loop.time()
            for session, handler in list(self._sessions.values()):
                limit = session.attributes.get(KEEPALIVE, 0)
                reader = getattr(handler, "reader", None)
                if (
                    limit > 0
                    and isinstance(reader, _TimedReader)
                    and isinstance(handler, _Handler)
                    and session.transitions.state == "connected"
                    and now - reader.last_read > limit
                ):
                    session.attributes[KEEPALIVE] = 0  # once is enough
                    handler.handle_read_timeout()

    async def _authenticate(self, session: Session, _: Any) -> bool:
        return principal_of(session) is not None

    async def _handle_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        client_session: Session,
        handler: BrokerProtocolHandler,
        server: Server,
        listener_name: str,
    ) -> None:
        handler.finished = asyncio.Event()
        try:
            try:
                client_session.transitions.connect()
            except (MachineError, ValueError):  # the previous connection did not stop in time
                log.warning("client %s is still connected; refusing", client_session.client_id)
                await self._refuse(writer, SERVER_UNAVAILABLE, "previous connection still open")
            handler.attach(client_session, _TimedReader(reader), writer)
            client_id = str(client_session.client_id)
            self._sessions[client_id] = (client_session, handler)
            await handler.mqtt_connack_authorize(True)
            await handler.start()
            await self._publish_session_retained_messages(client_session)
            if not client_session.clean_session:  # a clean session has no subscriptions yet
                for subscription in self._session_filters(client_session):
                    await self._publish_retained_messages_for_subscription(
                        subscription, client_session
                    )
            await self._client_message_loop(client_session, handler)
        finally:
            handler.finished.set()

    # -- access checks -----------------------------------------------------------

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        principal = principal_of(session)
        return principal is not None and _allowed(principal, str(action.value), topic)

    def _may_receive(self, session: Session, topic: str) -> bool:
        principal = principal_of(session)
        return principal is not None and _allowed(principal, "receive", topic)

    async def _handle_message_delivery(
        self,
        client_session: Session,
        handler: BrokerProtocolHandler,
        wait_deliver: asyncio.Future[Any],
    ) -> bool:
        message = wait_deliver.result()
        if message is None:
            return True
        topic = message.topic
        if not acl.is_valid_topic(topic or ""):
            log.info("%s sent an invalid topic %r; closing", client_session.client_id, topic)
            if isinstance(handler, _Handler):
                handler.lose_connection()
            return True
        principal = principal_of(client_session)
        if principal is None or not _allowed(principal, "publish", topic):
            log.debug("dropped publish by %s to %r", client_session.client_id, topic)
            return True
        await self._route(client_session, topic, message.data, message.qos)
        if message.publish_packet is not None and message.publish_packet.retain_flag:
            await self.retain_message(client_session, topic, message.data, message.qos)
        return True

    # -- subscriptions index -----------------------------------------------------

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        code: int = await super().add_subscription(subscription, session)
        if code != SUBACK_FAILURE:
            self._filters.add(subscription[0])
        return code

    def _del_subscription(self, a_filter: str, session: Session) -> int:
        deleted: int = super()._del_subscription(a_filter, session)
        if not self._subscriptions.get(a_filter):
            self._subscriptions.pop(a_filter, None)
            self._filters.discard(a_filter)
        return deleted

    async def _del_all_subscriptions(self, session: Session) -> None:
        for topic_filter, subscribers in list(self._subscriptions.items()):
            kept = [(s, qos) for s, qos in subscribers if s is not session]
            if len(kept) == len(subscribers):
                continue
            if kept:
                subscribers[:] = kept
            else:
                del self._subscriptions[topic_filter]
                self._filters.discard(topic_filter)

    def _session_filters(self, session: Session) -> list[tuple[str, int]]:
        return [
            (topic_filter, qos)
            for topic_filter, subscribers in list(self._subscriptions.items())
            for s, qos in subscribers
            if s is session
        ]

    # -- delivery ------------------------------------------------------------------

    async def _run_broadcast(
        self, running_tasks: deque[asyncio.Task[OutgoingApplicationMessage]]
    ) -> None:
        # Only wills and amqtt's internal broadcasts still come through the queue.
        broadcast = await self._broadcast_queue.get()
        topic = broadcast["topic"]
        if topic:
            pub_qos = broadcast.get("pub_qos", broadcast.get("qos"))
            await self._route(broadcast.get("session"), topic, broadcast["data"], pub_qos)

    async def _route(
        self, source: Session | None, topic: str, data: bytes, pub_qos: int | None
    ) -> None:
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
                    broadcast = {"session": source, "topic": topic, "data": data}
                    await self._retain_broadcast_message(broadcast, qos, session)
                continue
            handler = self._get_handler(session)
            if handler is not None:
                task = asyncio.ensure_future(handler.mqtt_publish(topic, data, qos, retain=False))
                self._deliveries.add(task)
                task.add_done_callback(self._delivered)

    def _delivered(self, task: "asyncio.Future[Any]") -> None:
        self._deliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("a delivery failed: %r", task.exception())

    async def retain_message(
        self,
        source_session: Session | None,
        topic_name: str | None,
        data: bytes | bytearray | None,
        qos: int | None = None,
    ) -> None:
        await super().retain_message(source_session, topic_name, data, qos)
        if topic_name is None:
            return
        if topic_name in self._retained_messages:
            self._retained_topics.add(topic_name)
        else:
            self._retained_topics.discard(topic_name)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter, sub_qos = subscription
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks = []
        for topic in self._retained_topics.topics_matching(topic_filter):
            retained = self._retained_messages.get(topic)
            if retained is None or not self._may_receive(session, topic):
                continue
            qos = sub_qos if retained.qos is None else min(sub_qos, retained.qos)
            tasks.append(
                asyncio.ensure_future(handler.mqtt_publish(topic, retained.data, qos, retain=True))
            )
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, BaseException):
                log.info("retained delivery to %s failed: %r", session.client_id, result)

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
* Sessions follow MQTT 3.1.1: a clean session ends with its connection (a persistent
  one started right after it starts afresh), QoS 1/2 messages in flight or queued
  for an offline persistent session are delivered on reconnect with RETAIN=0, and
  only a new subscription's retained messages carry RETAIN=1 (see amqtt_handler).
* Limits: a publish over ``max_payload`` bytes is dropped, only the contract's
  retained topics keep retained messages, a connection that sends no CONNECT within
  ``connect_timeout`` is closed; each is counted in :class:`BrokerStats`. Text chosen
  by a client (username, client id) is logged cut short.
"""

import asyncio
import functools
import logging
import socket
import ssl
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker, RetainedApplicationMessage, Server
from amqtt.contexts import Action, ListenerConfig
from amqtt.errors import AMQTTError, MQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, SERVER_UNAVAILABLE, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import OutgoingApplicationMessage, Session
from transitions import MachineError

from broker import acl
from broker.amqtt_handler import Handler, TimedReader
from broker.amqtt_wire import read_connect, short
from broker.principals import Authenticator, Principal
from broker.topictree import TopicTree

log = logging.getLogger(__name__)

PRINCIPAL = "smartvend.principal"
KEEPALIVE = "smartvend.keepalive"  # seconds of silence after which the link is dropped
SUBACK_FAILURE = 0x80
_KICK_TIMEOUT = 5.0
_SWEEP_S = 0.25  # how often silent connections are looked for
_ACL_CACHE = 8192
MAX_QUEUED = 1000  # messages kept per offline persistent session (as Mosquitto's default)
FILTERS = "smartvend.filters"  # the session's own subscriptions: filter -> QoS


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
    queue_dropped: int = 0  # messages for a session whose queue (or packet ids) ran out

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def _close_quietly(writer: WriterAdapter) -> None:
    try:
        await writer.close()
    except (OSError, RuntimeError):
        log.debug("closing a client connection failed", exc_info=True)
        inner = getattr(writer, "_writer", None)  # amqtt's adapter skips close() on error
        if isinstance(inner, asyncio.StreamWriter):
            inner.close()


def _filters_of(session: Session) -> dict[str, int]:
    found = session.attributes.get(FILTERS)
    if found is None:
        found = session.attributes[FILTERS] = {}
    return found  # type: ignore[no-any-return]


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
        max_payload: int,
    ) -> None:
        super().__init__(config)
        self._subscriptions = _Subscriptions()
        self._authenticator = authenticator
        self._keepalive_grace = keepalive_grace
        self._connect_timeout = connect_timeout
        self._max_payload = max_payload
        # a CONNECT holds ids, credentials and a will (whose payload the limit covers)
        self._connect_limit = max_payload + 2048
        self.stats = BrokerStats()
        self._filters = TopicTree()
        self._retained_topics = TopicTree()
        self._closing = False
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
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
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
        if session is None or not isinstance(handler, Handler):
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

    @staticmethod
    def _create_ssl_context(listener: ListenerConfig) -> ssl.SSLContext:
        """A server context from the listener's certificate chain and key (no client certs)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(listener["certfile"], listener["keyfile"])
        return context

    # -- connection --------------------------------------------------------------

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:  # amqtt skips close() when the last drain fails (peer reset)
            if not writer.is_closing():
                writer.close()

    async def _refuse(self, writer: WriterAdapter, code: int, why: str) -> NoReturn:
        self.stats.connects_refused += 1
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
            log.exception("authenticator failed for %s", short(username))
            await self._refuse(writer, SERVER_UNAVAILABLE, "authenticator failed")
        if principal is None:
            log.info(
                "refused CONNECT from %s (client id %s)", short(username), short(session.client_id)
            )
            await self._refuse(writer, NOT_AUTHORIZED, "bad credentials")
        if session.will_flag and not acl.allowed(principal, "publish", session.will_topic or ""):
            log.info(
                "refused CONNECT from %s: will topic %s not allowed",
                short(username),
                short(session.will_topic),
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
        where = f"{remote_address}:{remote_port}"
        try:
            session: Session = await asyncio.wait_for(
                read_connect(reader, writer, self._connect_limit), self._connect_timeout
            )
        except TimeoutError as exc:
            self.stats.connect_timeouts += 1
            log.info("no CONNECT from %s within %ss; closing", where, self._connect_timeout)
            await _close_quietly(writer)
            raise MQTTError("no CONNECT in time") from exc
        except Exception as exc:  # garbage, a refused protocol level or a protocol error
            self.stats.connects_refused += 1
            reason = short(str(exc), 200)
            log.info("refused CONNECT from %s: %s", where, reason)
            await _close_quietly(writer)
            raise MQTTError(f"no valid CONNECT: {reason}") from exc

        session.remote_address, session.remote_port = remote_address, remote_port
        session.ssl_object = writer.get_ssl_info()
        handler = Handler(self.plugins_manager, loop=self._loop)
        principal = await self._authenticate_connect(session, writer)
        client_id = principal.username
        session.client_id = client_id
        session.attributes[PRINCIPAL] = principal
        await self.kick(client_id)  # take-over: the old connection ends first

        known = self._sessions.get(client_id)
        if session.clean_session or known is None or known[0].clean_session:
            # A clean session, or a persistent one after a clean one (which ended with
            # its connection even if amqtt's monitor has not removed it yet): start afresh.
            await self._delete_session(client_id)
            session.parent = 0
        else:
            existing = known[0]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain"):
                setattr(existing, name, getattr(session, name))
            existing.keep_alive = session.keep_alive
            existing.username = session.username
            existing.password = session.password
            existing.attributes[PRINCIPAL] = principal
            session = existing
            session.parent = 1
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
                    and isinstance(reader, TimedReader)
                    and isinstance(handler, Handler)
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
        if not isinstance(handler, Handler):
            raise MQTTError("unexpected protocol handler")
        try:
            try:
                client_session.transitions.connect()
            except (MachineError, ValueError):  # the previous connection did not stop in time
                log.warning("client %s is still connected; refusing", client_session.client_id)
                await self._refuse(writer, SERVER_UNAVAILABLE, "previous connection still open")
            handler.attach(client_session, TimedReader(reader), writer)
            handler.port = self
            handler.max_packet = self._connect_limit + self._max_payload
            client_id = str(client_session.client_id)
            self._sessions[client_id] = (client_session, handler)
            await handler.mqtt_connack_authorize(True)
            await handler.start()  # re-sends what was in flight
            await self._publish_session_retained_messages(client_session)  # then the queue
            await self._client_message_loop(client_session, handler)
        finally:
            handler.finished.set()
            await self._end_clean_session(client_session)

    async def _client_message_loop(self, client_session: Session, handler: Any) -> None:
        """Packets are handled by the connection's reader; wait for its end."""
        waiter = handler._disconnect_waiter
        if waiter is None:
            return
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            handler.lose_connection()
        await self._handle_disconnect(client_session, handler, waiter)

    async def _end_clean_session(self, session: Session) -> None:
        """A clean session ends with its connection [MQTT-3.1.2-6]."""
        client_id = str(session.client_id)
        known = self._sessions.get(client_id)
        if (
            session.clean_session
            and known is not None
            and known[0] is session
            and session.transitions.state != "connected"
        ):
            await self._delete_session(client_id)

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
        self._route(session, topic, data, qos)
        if retain:
            self._keep(session, topic, data, qos)

    async def on_subscribe(
        self, session: Session, handler: Handler, packet_id: int, filters: list[tuple[str, int]]
    ) -> None:
        codes = [await self.add_subscription(subscription, session) for subscription in filters]
        handler._write(bytes([0x90, 2 + len(codes)]) + packet_id.to_bytes(2, "big") + bytes(codes))
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
        handler._write(b"\xb0\x02" + packet_id.to_bytes(2, "big"))

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
            self._route(broadcast.get("session"), topic, broadcast["data"], pub_qos)

    def _route(self, source: Session | None, topic: str, data: bytes, pub_qos: int | None) -> None:
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
                    self._queue(session, source, topic, data, qos)
                continue
            handler = self._get_handler(session)
            if isinstance(handler, Handler):
                try:
                    handler.send(topic, data, qos, retain=False)
                except AMQTTError:  # 65,535 messages unacknowledged: no packet id left
                    self.stats.queue_dropped += 1

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
            self._keep(source_session, topic_name, bytes(data or b""), qos)

    def _keep(self, source: Session | None, topic: str, data: bytes, qos: int | None) -> None:
        """Store (or with an empty payload, clear) the retained message of ``topic``."""
        if not acl.may_retain(topic):
            if data:
                self.stats.retain_refused += 1
                log.debug("not retaining a message on %s", short(topic))
            return
        if data:  # [MQTT-3.3.1-5]
            self._retained_messages[topic] = RetainedApplicationMessage(source, topic, data, qos)
            self._retained_topics.add(topic)
        else:  # [MQTT-3.3.1-10]
            self._retained_messages.pop(topic, None)
            self._retained_topics.discard(topic)

    def _queue(
        self, session: Session, source: Session | None, topic: str, data: bytes, qos: int
    ) -> None:
        """Keep a QoS 1/2 message for an offline persistent session [MQTT-3.1.2-5]."""
        backlog = session.retained_messages
        if backlog.qsize() >= MAX_QUEUED:
            self.stats.queue_dropped += 1
            return
        backlog.put_nowait(RetainedApplicationMessage(source, topic, data, qos))

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

"""amqtt's ``Broker`` with SmartVend's authentication and access rules built in.

amqtt 0.12.1 (pinned) is used as the MQTT engine: its listeners, its session map
and its will handling. This subclass replaces the parts that are unsafe or costly
for a fleet; the packet loop is :mod:`broker.amqtt_handler`, the CONNECT read
:mod:`broker.amqtt_wire`, routing and retained messages :mod:`broker.amqtt_routing`.

* CONNECT is read whole within ``connect_timeout`` (else the connection is closed
  and counted); any protocol level but MQTT 3.1.1 gets CONNACK 1 at once.
* Credentials are checked right after CONNECT is read, before the session cache is
  touched, so a failed login can never delete or replace a live client's session.
  The client id becomes the username (as ``use_username_as_clientid`` on Mosquitto);
  a second connection of the same account takes over (the first one's will fires).
  An integrator's or the server's empty client id with clean session 1 gets a unique
  ``auto-…`` id instead (MQTT 3.1.1 [MQTT-3.1.3-6], as Mosquitto assigns one), so such
  connections never take over each other; a machine's client id stays its id.
* Keepalive is enforced: nothing received for keepalive x grace seconds closes the
  connection as abnormal, which publishes the client's will; one sweep checks every
  connection's last read.
* Sessions follow MQTT 3.1.1: a clean session ends with its connection (so a
  persistent one started right after it starts afresh and is kept); a persistent
  session's unacknowledged messages are re-sent first when it returns, then what was
  queued for it, with RETAIN=0.
* Text chosen by a client (username, client id) is logged cut short.
"""

import asyncio
import logging
import socket
import ssl
import uuid
from typing import Any, NoReturn

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker, Server
from amqtt.contexts import ListenerConfig
from amqtt.errors import MQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, SERVER_UNAVAILABLE, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from transitions import MachineError

from broker import acl
from broker.amqtt_handler import Handler, TimedReader
from broker.amqtt_routing import PRINCIPAL, BrokerStats, Routing, Subscriptions, principal_of
from broker.amqtt_wire import read_connect, short
from broker.principals import Authenticator, Principal
from broker.topictree import TopicTree

log = logging.getLogger(__name__)

KEEPALIVE = "smartvend.keepalive"  # seconds of silence after which the link is dropped
_KICK_TIMEOUT = 5.0
_SWEEP_S = 0.25  # how often silent connections are looked for


async def _close_quietly(writer: WriterAdapter) -> None:
    try:
        await writer.close()
    except (OSError, RuntimeError):
        log.debug("closing a client connection failed", exc_info=True)
        inner = getattr(writer, "_writer", None)  # amqtt's adapter skips close() on error
        if isinstance(inner, asyncio.StreamWriter):
            inner.close()


class GuardedBroker(Routing, Broker):  # type: ignore[misc]
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
        self._subscriptions = Subscriptions()
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
        # A will tells the others that a client was lost. When the broker itself stops,
        # every session ends with it and nobody is left to hear one: amqtt would queue
        # each connected client's will as it drops it, then log them "not broadcasted".
        for session, _handler in list(self._sessions.values()):
            session.will_flag = False
        await super().shutdown()

    def connected_clients(self) -> set[str]:
        return {
            client_id
            for client_id, (session, _) in list(self._sessions.items())
            if session.transitions.state == "connected"
        }

    async def kick_account(self, username: str) -> bool:
        """Close every connection of ``username`` (its own client id and assigned ones)."""
        kicked = await self.kick(username)
        for client_id, (session, _) in list(self._sessions.items()):
            principal = session.attributes.get(PRINCIPAL)
            if client_id != username and getattr(principal, "username", None) == username:
                kicked = await self.kick(client_id) or kicked
        return kicked

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
                async with asyncio.timeout(_KICK_TIMEOUT):
                    await finished.wait()
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
            async with asyncio.timeout(self._connect_timeout):
                session: Session = await read_connect(reader, writer, self._connect_limit)
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
        if not session.client_id and principal.role != "machine":
            client_id = f"auto-{uuid.uuid4().hex}"  # clean session 1 (checked on read)
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

"""amqtt's per-connection protocol handler, made to keep MQTT 3.1.1's delivery promises.

* Outgoing QoS 1 and 2 messages stay in the session's in-flight store until the
  client acknowledges them, however long that takes; a dropped connection leaves
  them there, and the next connection of a persistent session re-sends them
  (PUBLISH with DUP=1, or PUBREL) before anything new (MQTT 3.1.1, 4.4). amqtt as
  shipped gives up after 5 s and forgets the message when the connection ends.
* The CONNECT packet is read whole, with a size limit, before it is parsed, so a
  protocol level other than 4 (MQTT 3.1.1) is answered at once with CONNACK return
  code 1 whatever follows it (an MQTT 5 CONNECT carries properties amqtt cannot
  parse, which used to stall the client until a timeout).
* Reads are timestamped for the broker's keepalive sweep.
"""

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

from amqtt.adapters import BufferReader, ReaderAdapter, WriterAdapter
from amqtt.mqtt.connack import UNACCEPTABLE_PROTOCOL_VERSION, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.pubrel import PubrelPacket
from amqtt.session import OutgoingApplicationMessage

log = logging.getLogger(__name__)

CONNECT_TYPE = 0x10
MQTT_311 = 4
_MAX_LENGTH_BYTES = 4


class ConnectRefused(Exception):
    """The first packet was not an acceptable CONNECT; ``answered``: a CONNACK was sent."""

    def __init__(self, why: str, *, answered: bool = False) -> None:
        super().__init__(why)
        self.answered = answered


def short(value: object, limit: int = 64) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for logging client-chosen text."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text) - limit} more)"


async def _read_exactly(reader: ReaderAdapter, n: int) -> bytes:
    parts: list[bytes] = []
    missing = n
    while missing > 0:
        chunk: bytes = await reader.read(missing)
        if not chunk:
            raise ConnectRefused("connection closed inside CONNECT")
        parts.append(chunk)
        missing -= len(chunk)
    return b"".join(parts)


async def read_connect(reader: ReaderAdapter, writer: WriterAdapter, limit: int) -> BufferReader:
    """Read the first packet whole; it must be an MQTT 3.1.1 CONNECT of at most ``limit`` bytes.

    Returns a reader over the packet for amqtt's parser. Any other protocol level gets
    CONNACK 1 ("unacceptable protocol version") before :class:`ConnectRefused` is raised.
    """
    first = await _read_exactly(reader, 1)
    if first[0] != CONNECT_TYPE:
        raise ConnectRefused(f"first packet is not CONNECT (byte {first[0]:#04x})")
    header = bytearray(first)
    length, shift = 0, 0
    for _ in range(_MAX_LENGTH_BYTES):
        byte = (await _read_exactly(reader, 1))[0]
        header.append(byte)
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    else:
        raise ConnectRefused("malformed remaining length")
    if length > limit:
        raise ConnectRefused(f"CONNECT of {length} bytes is over the {limit} byte limit")
    body = await _read_exactly(reader, length)
    if len(body) < 2:
        raise ConnectRefused("CONNECT too short")
    (name_length,) = struct.unpack_from("!H", body)
    name = body[2 : 2 + name_length]
    level = body[2 + name_length] if len(body) > 2 + name_length else None
    if name not in (b"MQTT", b"MQIsdp"):
        raise ConnectRefused(f"unknown protocol name {short(name, 32)}")
    if level != MQTT_311:
        try:
            await ConnackPacket.build(0, UNACCEPTABLE_PROTOCOL_VERSION).to_stream(writer)
        except (OSError, RuntimeError):
            log.debug("could not answer an unsupported protocol level", exc_info=True)
        raise ConnectRefused(f"protocol level {level} is not MQTT 3.1.1", answered=True)
    return BufferReader(bytes(header) + body)


class TimedReader(ReaderAdapter):  # type: ignore[misc]
    """A reader that notes when it last received bytes (for the keepalive sweep)."""

    __slots__ = ("_inner", "_loop", "last_read")

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


class Handler(BrokerProtocolHandler):  # type: ignore[misc]
    """Protocol handler with lasting in-flight state and keepalive as a lost connection."""

    finished: asyncio.Event

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = False
        self._flows: set[asyncio.Task[None]] = set()
        self.on_flow_error: Callable[[BaseException], None] | None = None

    # -- connection state ----------------------------------------------------------

    def handle_read_timeout(self) -> None:
        log.info("keepalive expired for %s", self.session.client_id if self.session else None)
        self.lose_connection()

    def lose_connection(self) -> None:
        """End the client's message loop as if the network dropped (the will fires)."""
        waiter = self._disconnect_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def handle_connection_closed(self) -> None:
        self.closed = True
        await super().handle_connection_closed()

    async def stop(self) -> None:
        self.closed = True
        await super().stop()

    # -- outgoing messages ---------------------------------------------------------

    def send(self, topic: str, data: bytes | bytearray, qos: int, retain: bool) -> None:
        """Deliver a message to this client, in order with the others sent this way."""
        session = self.session
        if session is None:
            return
        if qos == 0:
            if self.closed:
                return
            packet = PublishPacket.build(topic, bytes(data), None, False, 0, retain)
            self._start(self._send_packet(packet))
            return
        message = OutgoingApplicationMessage(session.next_packet_id, topic, qos, data, retain)
        session.inflight_out[message.packet_id] = message
        self._start(self._flow_out(message))

    def _start(self, flow: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(flow)
        self._flows.add(task)
        task.add_done_callback(self._flow_done)

    def _flow_done(self, task: "asyncio.Task[None]") -> None:
        self._flows.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.info("a delivery to %s failed: %r", self._client_id(), error)
            if self.on_flow_error is not None:
                self.on_flow_error(error)

    def _client_id(self) -> str | None:
        return self.session.client_id if self.session else None

    def _expect(self, waiters: dict[int, "asyncio.Future[Any]"], packet_id: int) -> Any:
        waiter: asyncio.Future[Any] = self._loop.create_future()
        if self.closed:
            waiter.cancel()
        else:
            waiters[packet_id] = waiter
        return waiter

    async def _acknowledged(
        self, waiters: dict[int, "asyncio.Future[Any]"], packet_id: int, waiter: Any
    ) -> Any:
        """The acknowledgement, or None when the connection ended first (the message stays)."""
        try:
            await asyncio.wait([waiter])
        finally:
            if waiters.get(packet_id) is waiter:
                del waiters[packet_id]
        return None if waiter.cancelled() else waiter.result()

    async def _flow_out(self, message: OutgoingApplicationMessage) -> None:
        """QoS 1 or 2 to the client; ``message`` leaves the in-flight store when acknowledged."""
        session = self.session
        packet_id = message.packet_id
        if session is None or packet_id is None or self.closed:
            return  # stays in flight: re-sent when the session reconnects
        if message.qos == 1 or message.pubrec_packet is None:
            waiters = self._puback_waiters if message.qos == 1 else self._pubrec_waiters
            waiter = self._expect(waiters, packet_id)
            packet = message.build_publish_packet(dup=message.publish_packet is not None)
            message.publish_packet = packet
            await self._send_packet(packet)
            ack = await self._acknowledged(waiters, packet_id, waiter)
            if ack is None:
                return
            if message.qos == 1:
                message.puback_packet = ack
                session.inflight_out.pop(packet_id, None)
                return
            message.pubrec_packet = ack
        waiter = self._expect(self._pubcomp_waiters, packet_id)
        message.pubrel_packet = PubrelPacket.build(packet_id)
        await self._send_packet(message.pubrel_packet)
        if await self._acknowledged(self._pubcomp_waiters, packet_id, waiter) is not None:
            session.inflight_out.pop(packet_id, None)

    async def _retry_deliveries(self) -> None:
        """[MQTT-4.4.0-1]: re-send unacknowledged PUBLISH and PUBREL, in their order."""
        session = self.session
        if session is None:
            return
        for message in list(session.inflight_out.values()):
            self._start(self._flow_out(message))
        for incoming in list(session.inflight_in.values()):  # QoS 2 received, PUBREL due
            self._start(self._handle_qos2_message_flow(incoming))

    def pending_flows(self) -> int:
        return len(self._flows)

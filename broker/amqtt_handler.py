"""amqtt's per-connection protocol handler, made to keep MQTT 3.1.1's delivery promises.

The first packet, CONNECT, is read by :mod:`broker.amqtt_wire`; this handler takes
over from the second one.

* Outgoing QoS 1 and 2 messages stay in the session's in-flight store until the
  client acknowledges them, however long that takes; a dropped connection leaves
  them there, and the next connection of a persistent session re-sends them
  (PUBLISH with DUP=1, or PUBREL) before anything new (MQTT 3.1.1, 4.4). amqtt as
  shipped gives up after 5 s and forgets the message when the connection ends.
* Packets are read and answered in one loop per connection, without amqtt's task
  per packet, queue per session and task per delivery: a PUBLISH is routed as soon
  as it is read (its PUBACK written right after), acknowledgements just settle the
  in-flight store. Less memory per
  connection and less CPU per message.
* What a connection is sent in one turn of the event loop leaves in one write.
* A packet far over the payload limit is not read at all: the connection is closed
  (and the drop counted), so a 10 MB publish never sits in memory.
* Reads are timestamped for the broker's keepalive sweep.
"""

import asyncio
import logging
import struct
from typing import Any, Protocol

from amqtt.adapters import ReaderAdapter, StreamWriterAdapter, WriterAdapter
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import IncomingApplicationMessage, OutgoingApplicationMessage, Session

from broker.amqtt_wire import (
    PINGRESP,
    ProtocolViolation,
    parse_filters,
    publish_bytes,
    utf8,
)

log = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 2.0
MAX_UNSENT = 8 << 20  # bytes waiting in a connection before QoS 0 deliveries are dropped
MAX_INFLIGHT = 20_000  # unacknowledged QoS 1/2 messages per session before more are dropped
_PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP = 3, 4, 5, 6, 7
_SUBSCRIBE, _UNSUBSCRIBE, _PINGREQ, _DISCONNECT = 8, 10, 12, 14


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


class Port(Protocol):
    """What a connection hands to the broker."""

    def on_publish(
        self, session: Session, handler: "Handler", topic: str, data: bytes, qos: int, retain: bool
    ) -> None: ...

    async def on_subscribe(
        self, session: Session, handler: "Handler", packet_id: int, filters: list[tuple[str, int]]
    ) -> None: ...

    async def on_unsubscribe(
        self, session: Session, handler: "Handler", packet_id: int, filters: list[str]
    ) -> None: ...

    def dropped_oversize(self) -> None: ...


class Flag:
    """A one-shot event that allocates nothing until somebody waits for it."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        self._waiters = None

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter


class Handler(BrokerProtocolHandler):  # type: ignore[misc]
    """One client connection: reads packets, settles acknowledgements, writes deliveries."""

    finished: Flag

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = False
        self.port: Port | None = None
        self.max_packet = 1 << 20
        self.finished = Flag()
        self._flush: asyncio.Future[None] | None = None
        self._out: list[bytes] | None = None
        self._reader_stopped = Flag()
        self._pending_subscriptions = None
        self._pending_unsubscriptions = None

    # -- life of the connection -------------------------------------------------------

    async def start(self) -> None:
        self._disconnect_waiter = self._loop.create_future()
        self._reader_task = asyncio.create_task(self._reader_loop())
        await self._retry_deliveries()

    async def stop(self) -> None:
        self.closed = True
        task = self._reader_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await self._reader_stopped.wait()
        self._send_out_now()
        writer = self.writer
        if isinstance(writer, StreamWriterAdapter):
            # No drain: a peer that stopped reading must not hold its session (and a
            # take-over) until TCP gives up. The transport sends what it has, then closes.
            writer.is_closed = True
            writer._writer.close()
        elif writer is not None:
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await writer.close()
            except (OSError, RuntimeError, TimeoutError, asyncio.CancelledError):
                log.debug("closing a connection failed", exc_info=True)
        self._end(None)

    def _send_out_now(self) -> None:
        """Hand what is still queued to the transport (before a close)."""
        out, self._out = self._out, None
        writer = self.writer
        if out and isinstance(writer, StreamWriterAdapter) and not writer.is_closed:
            writer.write(b"".join(out))

    def _end(self, disconnect: DisconnectPacket | None) -> None:
        waiter = self._disconnect_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(disconnect)

    async def wait_disconnect(self) -> DisconnectPacket | None:
        waiter = self._disconnect_waiter
        return None if waiter is None else await waiter

    def handle_read_timeout(self) -> None:
        log.info("keepalive expired for %s", self.session.client_id if self.session else None)
        self.lose_connection()

    def lose_connection(self) -> None:
        """End the client's message loop as if the network dropped (the will fires)."""
        self._end(None)

    async def handle_connection_closed(self) -> None:
        self.closed = True
        self._end(None)

    async def _reader_loop(self) -> None:
        try:
            await self._read_packets()
        except asyncio.CancelledError:
            pass
        except (ProtocolViolation, asyncio.IncompleteReadError, ConnectionError) as exc:
            log.info("closing %s: %s", self.session.client_id if self.session else None, exc)
        except Exception:
            log.exception(
                "reading from %s failed", self.session.client_id if self.session else None
            )
        finally:
            self.closed = True
            self._end(None)
            self._reader_stopped.set()

    async def _read_exactly(self, n: int) -> bytes:
        reader = self.reader
        data: bytes = await reader.read(n)
        if len(data) == n:
            return data
        parts = [data]
        missing = n - len(data)
        while missing:
            chunk: bytes = await reader.read(missing)
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(chunk)
            missing -= len(chunk)
        return b"".join(parts)

    async def _read_packets(self) -> None:
        reader = self.reader
        session = self.session
        port = self.port
        if reader is None or session is None or port is None:
            return
        while True:
            first_bytes = await reader.read(1)
            if not first_bytes:
                return  # EOF without DISCONNECT
            first = first_bytes[0]
            length, shift = 0, 0
            for _ in range(4):
                byte = (await self._read_exactly(1))[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            else:
                raise ProtocolViolation("malformed remaining length")
            if length > self.max_packet:
                port.dropped_oversize()
                raise ProtocolViolation(f"a packet of {length} bytes is over the limit")
            body = await self._read_exactly(length) if length else b""
            kind, flags = first >> 4, first & 0x0F
            if kind == _PUBLISH:
                self._incoming_publish(session, port, flags, body)
            elif kind in (_PUBACK, _PUBREC, _PUBREL, _PUBCOMP):
                if len(body) != 2:
                    raise ProtocolViolation("malformed acknowledgement")
                self._acknowledged(session, port, kind, struct.unpack("!H", body)[0])
            elif kind == _PINGREQ:
                self.write(PINGRESP)
            elif kind == _SUBSCRIBE:
                packet_id, filters = parse_filters(flags, body, with_qos=True)
                await port.on_subscribe(session, self, packet_id, filters)
            elif kind == _UNSUBSCRIBE:
                packet_id, names = parse_filters(flags, body, with_qos=False)
                await port.on_unsubscribe(session, self, packet_id, [f for f, _ in names])
            elif kind == _DISCONNECT:
                self.closed = True
                self._end(DisconnectPacket())
                return
            else:
                raise ProtocolViolation(f"unexpected packet type {kind}")

    def _incoming_publish(self, session: Session, port: Port, flags: int, body: bytes) -> None:
        qos, retain = (flags >> 1) & 0x03, bool(flags & 0x01)
        if qos == 3:
            raise ProtocolViolation("PUBLISH with QoS 3")  # [MQTT-3.3.1-4]
        topic, at = utf8(body, 0)
        if qos == 0:
            port.on_publish(session, self, topic, body[at:], 0, retain)
            return
        if at + 2 > len(body):
            raise ProtocolViolation("PUBLISH without packet id")
        (packet_id,) = struct.unpack_from("!H", body, at)
        data = body[at + 2 :]
        if qos == 1:
            port.on_publish(session, self, topic, data, 1, retain)
            self.write(b"\x40\x02" + body[at : at + 2])
            return
        # QoS 2: kept until PUBREL, then passed on once (a DUP re-send is answered again).
        if packet_id not in session.inflight_in:
            session.inflight_in[packet_id] = IncomingApplicationMessage(
                packet_id, topic, 2, data, retain
            )
        self.write(b"\x50\x02" + body[at : at + 2])

    def _acknowledged(self, session: Session, port: Port, kind: int, packet_id: int) -> None:
        pid = struct.pack("!H", packet_id)
        if kind == _PUBREL:
            held = session.inflight_in.pop(packet_id, None)
            if held is not None:
                port.on_publish(session, self, held.topic, bytes(held.data), 2, held.retain)
            self.write(b"\x70\x02" + pid)
            return
        message = session.inflight_out.get(packet_id)
        if message is None:
            return
        if kind == _PUBREC and message.qos == 2:
            message.pubrec_packet = True
            self.write(b"\x62\x02" + pid)
        elif (kind == _PUBACK and message.qos == 1) or (kind == _PUBCOMP and message.qos == 2):
            del session.inflight_out[packet_id]

    # -- outgoing messages ---------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data``; everything written in one turn of the loop leaves in one send."""
        if self.writer is None or self.closed:
            return
        if self._out is None:
            self._out = [data]
            self._loop.call_soon(self._send_out)
        else:
            self._out.append(data)

    def _send_out(self) -> None:
        out, self._out = self._out, None
        writer = self.writer
        if not out or writer is None or self.closed:
            return
        writer.write(out[0] if len(out) == 1 else b"".join(out))
        if not isinstance(writer, StreamWriterAdapter) and self._flush is None:
            # A websocket writer only sends on drain(): one flush per burst of writes.
            self._flush = asyncio.ensure_future(self._flush_soon(writer))

    async def _flush_soon(self, writer: WriterAdapter) -> None:
        try:
            await writer.drain()
        except (OSError, RuntimeError) as exc:
            log.debug("sending to %s failed: %r", self._client_id(), exc)
            self.lose_connection()
        except Exception as exc:  # the websockets library's own connection errors
            log.debug("sending to %s failed: %r", self._client_id(), exc)
            self.lose_connection()
        finally:
            self._flush = None

    def _client_id(self) -> str | None:
        return self.session.client_id if self.session else None

    def send(self, topic: str, data: bytes | bytearray, qos: int, retain: bool) -> bool:
        """Deliver a message; QoS 1/2 stay in the session's in-flight store until acknowledged
        (and are re-sent by the session's next connection if this one ends first).

        False when the message was dropped because the client has fallen far behind: QoS 0
        while the connection holds over ``MAX_UNSENT`` bytes, QoS 1/2 beyond ``MAX_INFLIGHT``
        unacknowledged messages.
        """
        session = self.session
        if session is None:
            return False
        if qos == 0:
            if self._unsent() > MAX_UNSENT:
                return False
            self.write(publish_bytes(topic, bytes(data), 0, retain, None, False))
            return True
        if len(session.inflight_out) >= MAX_INFLIGHT:
            return False
        message = OutgoingApplicationMessage(session.next_packet_id, topic, qos, data, retain)
        session.inflight_out[message.packet_id] = message
        self.write(publish_bytes(topic, bytes(data), qos, retain, message.packet_id, False))
        return True

    def _unsent(self) -> int:
        writer = self.writer
        if isinstance(writer, StreamWriterAdapter):
            return int(writer._writer.transport.get_write_buffer_size())
        return 0

    async def _retry_deliveries(self) -> None:
        """[MQTT-4.4.0-1]: re-send unacknowledged PUBLISH (DUP=1) and PUBREL, in order."""
        session = self.session
        if session is None:
            return
        for packet_id, message in list(session.inflight_out.items()):
            if message.pubrec_packet:
                self.write(b"\x62\x02" + struct.pack("!H", packet_id))
            else:
                data = bytes(message.data)
                qos = int(message.qos or 1)
                self.write(publish_bytes(message.topic, data, qos, message.retain, packet_id, True))

"""MQTT 3.1.1 bytes for the embedded broker: the CONNECT read, packet parts, PUBLISH.

The CONNECT packet is read whole, with a size limit, before anything in it is used,
so a protocol level other than 4 (MQTT 3.1.1) is answered at once with CONNACK
return code 1 whatever follows it. (amqtt reads the payload before it checks the
level: an MQTT 5 CONNECT carries properties that shift the fields, and with
credentials it stalled the client until a timeout.) The session is built straight
from the bytes, as a :class:`LightSession`.
"""

import logging
import struct

from amqtt.adapters import ReaderAdapter, WriterAdapter

from broker.amqtt_session import LightSession

log = logging.getLogger(__name__)

CONNECT_TYPE = 0x10
MQTT_311 = 4
PINGRESP = b"\xd0\x00"
# CONNACK return codes [MQTT-3.2.2-3]
UNACCEPTABLE_PROTOCOL = 1
IDENTIFIER_REJECTED = 2
BAD_USERNAME_OR_PASSWORD = 4
_MAX_LENGTH_BYTES = 4


class ConnectRefused(Exception):
    """The first packet was not an acceptable CONNECT; ``answered``: a CONNACK was sent."""

    def __init__(self, why: str, *, answered: bool = False) -> None:
        super().__init__(why)
        self.answered = answered


class ProtocolViolation(Exception):
    """The client broke MQTT 3.1.1: the connection is closed (its will is published)."""


def short(value: object, limit: int = 64) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for logging client-chosen text."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text) - limit} more)"


def encode_length(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(data: bytes, at: int) -> tuple[str, int]:
    """The length-prefixed UTF-8 string at ``at`` and the offset after it."""
    raw, end = binary(data, at)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise ProtocolViolation("invalid UTF-8") from exc


def binary(data: bytes, at: int) -> tuple[bytes, int]:
    if at + 2 > len(data):
        raise ProtocolViolation("truncated field")
    (size,) = struct.unpack_from("!H", data, at)
    end = at + 2 + size
    if end > len(data):
        raise ProtocolViolation("truncated field")
    return data[at + 2 : end], end


def publish_bytes(
    topic: str, data: bytes, qos: int, retain: bool, packet_id: int | None, dup: bool
) -> bytes:
    name = topic.encode()
    body = struct.pack("!H", len(name)) + name
    if qos:
        body += struct.pack("!H", packet_id or 0)
    first = 0x30 | (0x08 if dup else 0) | qos << 1 | int(retain)
    return bytes([first]) + encode_length(len(body) + len(data)) + body + data


def parse_filters(flags: int, body: bytes, *, with_qos: bool) -> tuple[int, list[tuple[str, int]]]:
    """SUBSCRIBE (``with_qos``) or UNSUBSCRIBE: the packet id and ``(filter, qos)`` pairs."""
    if flags != 0x02 or len(body) < 2:
        raise ProtocolViolation("malformed SUBSCRIBE/UNSUBSCRIBE")  # [MQTT-3.8.1-1]
    (packet_id,) = struct.unpack_from("!H", body)
    at, found = 2, []
    while at < len(body):
        name, at = utf8(body, at)
        qos = 0
        if with_qos:
            if at >= len(body) or body[at] > 2:
                raise ProtocolViolation("malformed requested QoS")  # [MQTT-3.8.3-4]
            qos, at = body[at], at + 1
        found.append((name, qos))
    if not found:
        raise ProtocolViolation("no topic filter")  # [MQTT-3.8.3-3]
    return packet_id, found


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


async def _answer(writer: WriterAdapter, code: int) -> None:
    try:
        writer.write(bytes([0x20, 2, 0, code]))
        await writer.drain()
    except (OSError, RuntimeError):
        log.debug("could not send CONNACK %d", code, exc_info=True)


async def read_connect(reader: ReaderAdapter, writer: WriterAdapter, limit: int) -> LightSession:
    """Read the first packet whole: an MQTT 3.1.1 CONNECT of at most ``limit`` bytes.

    Any other protocol level gets CONNACK 1 ("unacceptable protocol version") before
    :class:`ConnectRefused` is raised; bad credential flags get 4, a persistent session
    without a client id gets 2 [MQTT-3.1.3-8]. Returns the session the CONNECT asks for.
    """
    first = await _read_exactly(reader, 1)
    if first[0] != CONNECT_TYPE:
        raise ConnectRefused(f"first packet is not CONNECT (byte {first[0]:#04x})")
    length, shift = 0, 0
    for _ in range(_MAX_LENGTH_BYTES):
        byte = (await _read_exactly(reader, 1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    else:
        raise ConnectRefused("malformed remaining length")
    if length > limit:
        raise ConnectRefused(f"CONNECT of {length} bytes is over the {limit} byte limit")
    body = await _read_exactly(reader, length)
    try:
        name, at = binary(body, 0)
    except ProtocolViolation as exc:
        raise ConnectRefused("CONNECT too short") from exc
    if name not in (b"MQTT", b"MQIsdp"):
        raise ConnectRefused(f"unknown protocol name {short(name, 32)}")  # [MQTT-3.1.2-1]
    level = body[at] if at < len(body) else None
    if level != MQTT_311:  # [MQTT-3.1.2-2]
        await _answer(writer, UNACCEPTABLE_PROTOCOL)
        raise ConnectRefused(f"protocol level {level} is not MQTT 3.1.1", answered=True)
    try:
        return await _session(body, at + 1, writer)
    except ProtocolViolation as exc:
        raise ConnectRefused(f"malformed CONNECT: {exc}") from exc


async def _session(body: bytes, at: int, writer: WriterAdapter) -> LightSession:
    if at + 3 > len(body):
        raise ProtocolViolation("truncated variable header")
    flags = body[at]
    (keepalive,) = struct.unpack_from("!H", body, at + 1)
    will, will_qos, will_retain = bool(flags & 0x04), (flags >> 3) & 0x03, bool(flags & 0x20)
    if flags & 0x01:
        raise ProtocolViolation("reserved flag set")  # [MQTT-3.1.2-3]
    if will_qos == 3 or (not will and (will_qos or will_retain)):
        raise ProtocolViolation("inconsistent will flags")  # [MQTT-3.1.2-11..15]
    session = LightSession()
    session.clean_session = bool(flags & 0x02)
    session.keep_alive = keepalive
    session.client_id, at = utf8(body, at + 3)
    if will:
        session.will_flag = True
        session.will_topic, at = utf8(body, at)
        will_message, at = binary(body, at)
        session.will_message = will_message
        session.will_qos, session.will_retain = will_qos, will_retain
    if flags & 0x80:
        session.username, at = utf8(body, at)
    if flags & 0x40:
        if not flags & 0x80:  # [MQTT-3.1.2-22]
            await _answer(writer, BAD_USERNAME_OR_PASSWORD)
            raise ConnectRefused("password without username", answered=True)
        password, at = binary(body, at)
        session.password = password.decode("utf-8", errors="replace")
    if at != len(body):
        raise ProtocolViolation("unexpected bytes after the payload")
    if not session.client_id and not session.clean_session:  # [MQTT-3.1.3-8]
        await _answer(writer, IDENTIFIER_REJECTED)
        raise ConnectRefused("persistent session without a client id", answered=True)
    return session

"""A bare MQTT 3.1.1 client over asyncio streams: every packet is the test's to send.

Client libraries acknowledge and reconnect by themselves; conformance tests need to
leave a message unacknowledged, drop the socket at a chosen moment and read the
DUP and RETAIN flags, so they speak the protocol byte by byte here.
"""

import asyncio
import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14
WAIT = 10.0


def _string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _length(len(body)) + body


def connect_packet(
    client_id: str,
    username: str | None,
    password: str | None,
    *,
    clean: bool = True,
    keepalive: int = 60,
    will: tuple[str, bytes, int, bool] | None = None,
    level: int = 4,
    properties: bytes | None = None,
) -> bytes:
    """CONNECT; ``properties`` (MQTT 5 only) are written after the keepalive."""
    flags = 0x02 if clean else 0
    payload = _string(client_id.encode())
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
        if properties is not None:
            payload += b"\x00"  # no will properties
        payload += _string(topic.encode()) + _string(message)
    if username is not None:
        flags |= 0x80
        payload += _string(username.encode())
    if password is not None:
        flags |= 0x40
        payload += _string(password.encode())
    name = b"MQIsdp" if level == 3 else b"MQTT"
    header = _string(name) + bytes([level, flags]) + struct.pack("!H", keepalive)
    if properties is not None:
        header += _length(len(properties)) + properties
    return packet(CONNECT, 0, header + payload)


@dataclass
class Packet:
    kind: int
    flags: int
    body: bytes

    @property
    def dup(self) -> bool:
        return bool(self.flags & 0x08)

    @property
    def qos(self) -> int:
        return (self.flags >> 1) & 0x03

    @property
    def retain(self) -> bool:
        return bool(self.flags & 0x01)

    def publish(self) -> tuple[str, int | None, bytes]:
        """``(topic, packet id or None, payload)`` of a PUBLISH."""
        (size,) = struct.unpack_from("!H", self.body)
        topic = self.body[2 : 2 + size].decode()
        rest = self.body[2 + size :]
        if self.qos:
            return topic, struct.unpack_from("!H", rest)[0], rest[2:]
        return topic, None, rest

    def packet_id_of_publish(self) -> int:
        found = self.publish()[1]
        assert found is not None, "a QoS 0 PUBLISH has no packet id"
        return found

    @property
    def packet_id(self) -> int:
        return int(struct.unpack_from("!H", self.body)[0])


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._next_id = 0

    @classmethod
    async def open(cls, host: str, port: int) -> "RawClient":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self, within: float = WAIT) -> Packet:
        async def one() -> Packet:
            first = await self.reader.readexactly(1)
            length, shift = 0, 0
            while True:
                byte = (await self.reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            body = await self.reader.readexactly(length)
            return Packet(first[0] >> 4, first[0] & 0x0F, body)

        return await asyncio.wait_for(one(), within)

    async def nothing_within(self, seconds: float) -> bool:
        """True if no packet arrives within ``seconds`` (the connection may stay open)."""
        try:
            await self.read(seconds)
        except TimeoutError:
            return True
        return False

    async def closed_by_peer(self, within: float = WAIT) -> bool:
        """True if the broker closes the connection within ``within`` (after any packets)."""
        try:
            await asyncio.wait_for(self.reader.read(), within)
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    async def connect(self, client_id: str, username: str, password: str, **kw: object) -> Packet:
        await self.send(connect_packet(client_id, username, password, **kw))  # type: ignore[arg-type]
        return await self.read()

    def packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    async def subscribe(self, topic_filter: str, qos: int) -> bytes:
        """SUBSCRIBE one filter; returns the SUBACK return codes (retained may follow)."""
        pid = self.packet_id()
        body = struct.pack("!H", pid) + _string(topic_filter.encode()) + bytes([qos])
        await self.send(packet(SUBSCRIBE, 2, body))
        ack = await self.read()
        assert ack.kind == SUBACK and ack.packet_id == pid, ack
        return ack.body[2:]

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        body = _string(topic.encode())
        if qos:
            body += struct.pack("!H", self.packet_id())
        await self.send(packet(PUBLISH, qos << 1 | int(retain), body + payload))

    async def ack(self, kind: int, packet_id: int) -> None:
        await self.send(packet(kind, 2 if kind == PUBREL else 0, struct.pack("!H", packet_id)))

    async def disconnect(self) -> None:
        await self.send(packet(DISCONNECT, 0, b""))
        self.close()

    def close(self) -> None:
        self.writer.close()

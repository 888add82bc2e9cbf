"""Small helpers around aiomqtt for the broker tests."""

import asyncio
import secrets
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from broker.embedded import EmbeddedBroker
from broker.passwords import hash_secret

ROLES = {
    "A": "machine",
    "B": "machine",
    "acme": "integrator",
    "hass": "home_assistant",
    "srv": "server",
    "watch": "server",
}
BROKER_KINDS = ("embedded", "mosquitto")


@dataclass
class BrokerUnderTest:
    kind: str
    host: str
    port: int
    keys: dict[str, str]
    revoke: Callable[[str], Awaitable[None]]
    embedded: EmbeddedBroker | None = None


def make_keys() -> dict[str, str]:
    return {username: secrets.token_urlsafe(24) for username in ROLES}


def accounts_for(
    keys: dict[str, str], *, without: frozenset[str] = frozenset()
) -> list[tuple[str, str, str]]:
    return [
        (username, ROLES[username], hash_secret(key))
        for username, key in keys.items()
        if username not in without
    ]


NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
WAIT = 10.0


def client(
    broker: BrokerUnderTest,
    username: str | None,
    *,
    password: str | None = None,
    identifier: str | None = None,
    **kwargs: Any,
) -> aiomqtt.Client:
    """An aiomqtt client for ``username`` (its own key unless ``password`` is given)."""
    if password is None and username is not None:
        password = broker.keys[username]
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=username,
        password=password,
        identifier=identifier if identifier is not None else username,
        socket_options=NODELAY,
        timeout=WAIT,
        **kwargs,
    )


async def can_connect(broker: BrokerUnderTest, username: str | None, **kwargs: Any) -> bool:
    """True if the broker accepts the CONNECT, False if it refuses it."""
    try:
        async with client(broker, username, **kwargs):
            return True
    except aiomqtt.MqttError:
        return False


async def messages_until(
    mqtt: aiomqtt.Client, sentinel: bytes, *, within: float = WAIT
) -> list[aiomqtt.Message]:
    """Messages received before the one whose payload is ``sentinel``."""
    seen: list[aiomqtt.Message] = []

    async def collect() -> None:
        async for message in mqtt.messages:
            if message.payload == sentinel:
                return
            seen.append(message)

    await asyncio.wait_for(collect(), within)
    return seen


def granted(codes: Any) -> list[bool]:
    """SUBACK return codes as granted (True) / refused (False)."""
    return [not getattr(code, "is_failure", code == 0x80) for code in codes]


def _string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def connect_packet(
    *, client_id: str, username: str, password: str, will_topic: str, will: bytes, keepalive: int
) -> bytes:
    """A raw MQTT 3.1.1 CONNECT with a QoS 1 retained will and a clean session."""
    flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02
    body = _string(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    for part in (
        client_id.encode(),
        will_topic.encode(),
        will,
        username.encode(),
        password.encode(),
    ):
        body += _string(part)
    length, encoded = len(body), bytearray()
    while True:
        digit, length = length % 128, length // 128
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            break
    return bytes([0x10]) + bytes(encoded) + body

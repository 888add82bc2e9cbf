"""The embedded broker's own MQTT parsing: only its own errors, whatever the bytes."""

import asyncio

from amqtt.adapters import BufferReader, BufferWriter
from hypothesis import given
from hypothesis import strategies as st

from broker.amqtt_session import LightSession
from broker.amqtt_wire import (
    ConnectRefused,
    ProtocolViolation,
    encode_length,
    parse_filters,
    publish_bytes,
    read_connect,
)
from tests.broker.raw import Packet, connect_packet


def connect(data: bytes) -> LightSession | ConnectRefused:
    async def run() -> LightSession | ConnectRefused:
        try:
            return await read_connect(BufferReader(data), BufferWriter(), 4096)
        except ConnectRefused as refused:
            return refused

    return asyncio.run(run())


@given(st.binary(max_size=300))
def test_random_bytes_are_refused_cleanly(data: bytes) -> None:
    assert isinstance(connect(data), LightSession | ConnectRefused)


@given(st.binary(max_size=60), st.integers(min_value=0, max_value=200))
def test_damaged_connects_are_refused_cleanly(noise: bytes, at: int) -> None:
    good = connect_packet("A", "A", "key", will=("t", b"w", 1, True), keepalive=30)
    at = min(at, len(good))
    assert isinstance(
        connect(good[:at] + noise + good[at + len(noise) :]), LightSession | ConnectRefused
    )


def test_connect_fields() -> None:
    session = connect(
        connect_packet("A", "user", "pw", clean=False, keepalive=42, will=("w/t", b"bye", 1, True))
    )
    assert isinstance(session, LightSession)
    assert (session.client_id, session.username, session.password) == ("A", "user", "pw")
    assert (session.clean_session, session.keep_alive) == (False, 42)
    assert (session.will_flag, session.will_topic, session.will_message) == (True, "w/t", b"bye")
    assert (session.will_qos, session.will_retain) == (1, True)


@given(st.integers(min_value=0, max_value=15), st.binary(max_size=100), st.booleans())
def test_filters_parse_or_violate(flags: int, body: bytes, with_qos: bool) -> None:
    try:
        packet_id, found = parse_filters(flags, body, with_qos=with_qos)
    except ProtocolViolation:
        return
    assert 0 <= packet_id <= 65535 and found


@given(st.text(min_size=1, max_size=40), st.binary(max_size=300), st.integers(0, 2), st.booleans())
def test_publish_bytes_round_trip(topic: str, data: bytes, qos: int, retain: bool) -> None:
    raw = publish_bytes(topic, data, qos, retain, 7 if qos else None, False)
    length = len(raw) - 1 - len(encode_length(len(raw) - 1))
    assert raw[1 : len(raw) - length] == encode_length(length)
    packet = Packet(raw[0] >> 4, raw[0] & 0x0F, raw[len(raw) - length :])
    assert (packet.qos, packet.retain, packet.dup) == (qos, retain, False)
    assert packet.publish() == (topic, 7 if qos else None, data)

"""The embedded broker's mqtts listener (MQTT_TLS_CERT / MQTT_TLS_KEY / MQTTS_PORT),
checked from the host with a private CA made by the test."""

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
import pytest_asyncio

from broker.embedded import EmbeddedBroker
from broker.passwords import hash_secret
from broker.principals import StaticAuthenticator
from device.simulator import Fleet
from schema import topics
from tests.broker.certs import Pki, make_pki
from tests.broker.mqtt_client import NODELAY, messages_until
from tests.support.ports import free_port

KEYS = {"sim-a": "key-of-sim-a", "srv": "key-of-srv"}
ROLES = {"sim-a": "machine", "srv": "server"}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def auth() -> StaticAuthenticator:
    return StaticAuthenticator({u: (ROLES[u], hash_secret(k)) for u, k in KEYS.items()})


@pytest_asyncio.fixture
async def tls_broker(pki: Pki) -> AsyncIterator[EmbeddedBroker]:
    broker = EmbeddedBroker(
        "127.0.0.1",
        free_port(),
        auth(),
        tls_cert=pki.cert,
        tls_key=pki.key,
        tls_port=free_port(),
    )
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def server_client(port: int, context: ssl.SSLContext | None) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username="srv",
        password=KEYS["srv"],
        identifier="srv",
        tls_context=context,
        socket_options=NODELAY,
        timeout=10,
    )


async def test_mqtts_listener_beside_plain_tcp(tls_broker: EmbeddedBroker, pki: Pki) -> None:
    assert tls_broker.tls_port is not None and tls_broker.port is not None
    async with server_client(tls_broker.tls_port, trusting(pki.ca)) as srv:
        await srv.subscribe(topics.SERVER_STATUS, qos=1)
        await srv.publish(topics.SERVER_STATUS, b"over-tls", qos=1)
        assert await messages_until(srv, b"over-tls") == []
    async with server_client(tls_broker.port, None) as srv:  # plain TCP still served
        await srv.subscribe(topics.SERVER_STATUS, qos=1)
        await srv.publish(topics.SERVER_STATUS, b"plain", qos=1)
        assert await messages_until(srv, b"plain") == []


async def test_a_client_that_does_not_trust_the_ca_is_refused(
    tls_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    assert tls_broker.tls_port is not None
    (tmp_path / "other").mkdir()
    other = make_pki(tmp_path / "other", ca_name="Somebody else's CA")
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection("127.0.0.1", tls_broker.tls_port, ssl=trusting(other.ca))
    # Plain MQTT on the TLS port gets nowhere either.
    reader, writer = await asyncio.open_connection("127.0.0.1", tls_broker.tls_port)
    writer.write(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    await writer.wait_closed()


async def test_tls_only(pki: Pki) -> None:
    broker = EmbeddedBroker(
        "127.0.0.1", None, auth(), tls_cert=pki.cert, tls_key=pki.key, tls_port=free_port()
    )
    await broker.start()
    try:
        assert broker.port is None and broker.tls_port is not None
        async with server_client(broker.tls_port, trusting(pki.ca)) as srv:
            await srv.subscribe(topics.SERVER_STATUS, qos=1)
            await srv.publish(topics.SERVER_STATUS, b"only-tls", qos=1)
            assert await messages_until(srv, b"only-tls") == []
    finally:
        await broker.stop()


async def test_simulated_machine_comes_online_over_tls(
    tls_broker: EmbeddedBroker, pki: Pki
) -> None:
    """The host simulator's MQTT client settings (device.virtual: TLS context with the
    CA, as the firmware's ``mqtt.tls`` + ``mqtt.ca_file``) against the mqtts listener."""
    assert tls_broker.tls_port is not None
    async with server_client(tls_broker.tls_port, trusting(pki.ca)) as srv:
        await srv.subscribe(topics.status("sim-a"), qos=1)
        async with Fleet(
            [("sim-a", KEYS["sim-a"])],
            "127.0.0.1",
            tls_broker.tls_port,
            tls_context=trusting(pki.ca),
        ) as fleet:
            await fleet.wait_online()
            message = await asyncio.wait_for(anext(aiter(srv.messages)), 10)
            assert b'"online"' in bytes(message.payload)  # type: ignore[arg-type]
            assert tls_broker.connected_clients() == {"srv", "sim-a"}


def test_tls_needs_both_files(pki: Pki) -> None:
    with pytest.raises(ValueError):
        EmbeddedBroker("127.0.0.1", 1, auth(), tls_cert=pki.cert)
    with pytest.raises(ValueError):
        EmbeddedBroker("127.0.0.1", None, auth())

"""Machines over TLS on the listener `smartvend mosquitto-config --tls-port` writes."""

import secrets
import ssl
from pathlib import Path

import aiomqtt
import pytest
import trustme

from broker import mosquitto
from broker.passwords import hash_secret
from schema import topics
from tests.e2e.external import mosquitto_two_ports

pytestmark = pytest.mark.mosquitto


async def test_a_machine_speaks_tls_and_the_server_hears_it() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    keys = {"smartvend-server": secrets.token_urlsafe(24), "m-1": secrets.token_urlsafe(24)}
    accounts = [
        ("smartvend-server", "server", hash_secret(keys["smartvend-server"])),
        ("m-1", "machine", hash_secret(keys["m-1"])),
    ]
    files = {
        "server.pem": cert.private_key_and_cert_chain_pem.bytes().decode(),
        "passwd": mosquitto.password_file(accounts),
        "acl": mosquitto.acl_file(accounts),
    }

    def conf(folder: Path, plain: int, tls: int) -> str:
        pem = str(folder / "server.pem")
        return mosquitto.mosquitto_conf(
            port=plain,
            host="127.0.0.1",
            password_file=str(folder / "passwd"),
            acl_file=str(folder / "acl"),
            persistence_dir=None,
            tls_listener=mosquitto.TlsListener(tls, "127.0.0.1", pem, pem),
        )

    async with mosquitto_two_ports(files, conf) as (plain, tls):
        context = ssl.create_default_context()
        ca.configure_trust(context)
        async with aiomqtt.Client(
            "127.0.0.1", plain, username="smartvend-server", password=keys["smartvend-server"]
        ) as server:
            await server.subscribe(topics.machine_filter("telemetry"), qos=1)
            async with aiomqtt.Client(
                "127.0.0.1",
                tls,
                username="m-1",
                password=keys["m-1"],
                identifier="m-1",
                tls_context=context,
            ) as machine:
                await machine.publish(topics.telemetry("m-1"), b'{"ts": 1}', qos=1)
            async for message in server.messages:
                assert message.topic.value == topics.telemetry("m-1")
                assert message.payload == b'{"ts": 1}'
                break
        # Without TLS, the TLS port lets nobody in.
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                "127.0.0.1", tls, username="m-1", password=keys["m-1"], timeout=2
            ):
                pass

"""Machines over TLS on the listener `smartvend mosquitto-config --tls-port` writes."""

import secrets
import shutil
import ssl

import aiomqtt
import pytest
import trustme

from broker import mosquitto
from broker.passwords import hash_secret
from schema import topics
from tests.e2e.external import readable_dir, start
from tests.support.ports import free_port

pytestmark = pytest.mark.mosquitto


async def test_a_machine_speaks_tls_and_the_server_hears_it() -> None:
    folder = readable_dir()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "server.pem"))
    (folder / "server.pem").chmod(0o644)  # mosquitto reads it as its own user
    keys = {"smartvend-server": secrets.token_urlsafe(24), "m-1": secrets.token_urlsafe(24)}
    accounts = [
        ("smartvend-server", "server", hash_secret(keys["smartvend-server"])),
        ("m-1", "machine", hash_secret(keys["m-1"])),
    ]
    for name, text in (("passwd", mosquitto.password_file(accounts)),
                       ("acl", mosquitto.acl_file(accounts))):  # fmt: skip
        (folder / name).write_text(text)
        (folder / name).chmod(0o644)
    process = None
    try:
        for _attempt in range(3):
            plain, tls = free_port(), free_port()
            conf = folder / "mosquitto.conf"
            conf.write_text(
                mosquitto.mosquitto_conf(
                    port=plain,
                    host="127.0.0.1",
                    password_file=str(folder / "passwd"),
                    acl_file=str(folder / "acl"),
                    persistence_dir=None,
                    tls_listener=mosquitto.TlsListener(
                        tls, "127.0.0.1", str(folder / "server.pem"), str(folder / "server.pem")
                    ),
                )
            )
            conf.chmod(0o644)
            process = await start(conf, folder / "mosquitto.log", tls)
            if process is not None:
                break
        assert process is not None, (folder / "mosquitto.log").read_text()
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
    finally:
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
        shutil.rmtree(folder, ignore_errors=True)

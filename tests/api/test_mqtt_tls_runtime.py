"""``smartvend serve`` with MQTT_TLS_CERT/MQTT_TLS_KEY/MQTTS_PORT and MQTT_MAX_PAYLOAD:
the embedded broker gets an mqtts listener and the payload limit."""

import asyncio
import ssl
from pathlib import Path

from tests.broker.certs import make_pki
from tests.broker.raw import CONNACK, RawClient, connect_packet
from tests.support.ports import free_port
from tests.support.stack import running_stack


async def test_serve_with_tls_settings(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    tls_port = free_port()
    async with running_stack(
        tmp_path,
        mqtt_tls_cert=pki.cert,
        mqtt_tls_key=pki.key,
        mqtts_port=tls_port,
        mqtt_max_payload=4096,
    ) as stack:
        broker = stack.runtime.mqtt.broker
        assert (broker.tls_port, broker.max_payload) == (tls_port, 4096)
        context = ssl.create_default_context(cafile=str(pki.ca))
        reader, writer = await asyncio.open_connection("127.0.0.1", tls_port, ssl=context)
        raw = RawClient(reader, writer)
        await raw.send(connect_packet("nobody", "nobody", "wrong"))
        answer = await raw.read()
        assert (answer.kind, answer.body[1]) == (CONNACK, 5)  # MQTT over TLS, refused
        raw.close()
        await writer.wait_closed()

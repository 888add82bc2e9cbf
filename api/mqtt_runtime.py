"""The server's MQTT side at run time: the embedded broker (unless MQTT_URL) and the bridge."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import event

from api.accounts import DatabaseAuthenticator
from api.bridge import Bridge
from api.errors import ConfigurationError
from api.runtime import Runtime, derive_secret
from broker.embedded import EmbeddedBroker
from broker.errors import BrokerStartError
from broker.passwords import hash_secret

log = logging.getLogger(__name__)
SERVER_USERNAME = "smartvend-server"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str
    password: str
    tls: bool


def external_endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return Endpoint(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        tls=tls,
    )


@dataclass
class MqttLink:
    bridge: Bridge
    broker: EmbeddedBroker | None
    endpoint: Endpoint

    @property
    def connected(self) -> bool:
        return bool(self.bridge.connected.is_set())

    async def disconnect(self, username: str) -> None:
        """Close a client's live connection (its key was rotated or revoked)."""
        if self.broker is not None:
            await self.broker.disconnect(username)


@contextlib.asynccontextmanager
async def start_mqtt(rt: Runtime) -> AsyncIterator[MqttLink]:
    settings = rt.settings
    broker: EmbeddedBroker | None = None
    if settings.mqtt_url:
        endpoint = external_endpoint(settings.mqtt_url)
    else:
        password = derive_secret(settings, "mqtt-server")
        endpoint = Endpoint(
            settings.mqtt_host, settings.mqtt_port, SERVER_USERNAME, password, tls=False
        )
        authenticator = DatabaseAuthenticator(
            rt.services.ctx.db, SERVER_USERNAME, hash_secret(password)
        )
        broker = EmbeddedBroker(
            settings.mqtt_host,
            settings.mqtt_port,
            authenticator,
            websocket_port=settings.mqtt_ws_port,
        )
        try:
            await broker.start()
        except BrokerStartError as exc:
            raise ConfigurationError(str(exc)) from exc
        log.info("embedded MQTT broker on %s:%d", settings.mqtt_host, settings.mqtt_port)
    bridge = Bridge(
        rt.services,
        host=endpoint.host,
        port=endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        tls=endpoint.tls,
        keepalive=settings.mqtt_keepalive_s,
    )

    def kick(_session: Any) -> None:
        bridge.kick()

    event.listen(rt.services.ctx.db, "after_commit", kick)
    task = asyncio.create_task(bridge.run())
    try:
        yield MqttLink(bridge=bridge, broker=broker, endpoint=endpoint)
    finally:
        event.remove(rt.services.ctx.db, "after_commit", kick)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if broker is not None:
            await broker.stop()

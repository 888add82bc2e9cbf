"""The server's MQTT side at run time: the embedded broker (unless MQTT_URL) and the bridge."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from api.errors import ConfigurationError
from api.infra.changes import Notifier
from api.infra.leader import Leadership
from api.mqtt.accounts import SERVER_USERNAME, DatabaseAuthenticator, server_password
from api.mqtt.bridge import Bridge
from api.server import cluster
from api.services.container import Services
from api.settings import Settings
from broker.embedded import EmbeddedBroker
from broker.errors import BrokerStartError
from broker.passwords import hash_secret

log = logging.getLogger(__name__)


@dataclass
class MqttLink:
    bridge: Bridge
    broker: EmbeddedBroker | None

    @property
    def connected(self) -> bool:
        return bool(self.bridge.connected.is_set())

    async def disconnect(self, username: str) -> None:
        """Close a client's live connection (its key was rotated or revoked)."""
        if self.broker is not None:
            await self.broker.disconnect(username)


async def _embedded(settings: Settings, services: Services) -> EmbeddedBroker:
    authenticator = DatabaseAuthenticator(
        services.ctx.db,
        SERVER_USERNAME,
        hash_secret(server_password(settings)),
        discovery_prefix=settings.ha_discovery_prefix,
    )
    broker = EmbeddedBroker(
        settings.mqtt_host,
        settings.mqtt_port,
        authenticator,
        keepalive_grace=1.5,
        websocket_port=settings.mqtt_ws_port,
        max_payload=settings.mqtt_max_payload,
        tls_cert=settings.mqtt_tls_cert,
        tls_key=settings.mqtt_tls_key,
        tls_port=settings.mqtts_port,
    )
    try:
        await broker.start()
    except BrokerStartError as exc:
        raise ConfigurationError(str(exc)) from exc
    log.info("embedded MQTT broker on %s:%d", settings.mqtt_host, settings.mqtt_port)
    return broker


@contextlib.asynccontextmanager
async def start_mqtt(
    settings: Settings,
    services: Services,
    notifier: Notifier,
    leadership: Leadership | None = None,
) -> AsyncIterator[MqttLink]:
    """The broker (unless MQTT_URL) and the bridge; ``leadership`` None: this process leads."""
    broker = None if settings.mqtt_url else await _embedded(settings, services)
    leads: Callable[[], bool] = (
        (lambda: True) if leadership is None else (lambda: leadership.is_leader)
    )
    bridge = Bridge.from_settings(services, settings, **cluster.bridge_options(settings, leads))
    if leadership is not None:
        leadership.on_change(lambda _leader: bridge.kick())  # a new leader drains at once
    # Another worker committed (its outbox rows too): the leader drains at once.
    notifier.on_remote(lambda _channel: bridge.kick())

    task = asyncio.create_task(bridge.run())
    try:
        yield MqttLink(bridge=bridge, broker=broker)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if broker is not None:
            await broker.stop()

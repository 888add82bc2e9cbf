"""The embedded MQTT broker: amqtt with SmartVend's authentication and access rules.

* Listens on the given host only (never all interfaces unless asked).
* Every client authenticates through the :class:`Authenticator`; anonymous clients
  are refused. A machine must use its id as username *and* client id.
* The client id becomes the username for every account (as Mosquitto's
  ``use_username_as_clientid``): an account holds one connection at a time, and a
  second CONNECT with the same username takes over (the first one is closed and
  its will published). Use one account per process that connects.
* A CONNECT whose will topic the account may not publish to is refused.
* Retained messages live in memory: republish retained state from the database
  after start. Only the contract's retained topics keep one.
* Publishes over ``max_payload`` bytes are dropped; :meth:`EmbeddedBroker.stats`
  counts them, refused CONNECTs and connections that never sent one.
* With ``tls_cert`` and ``tls_key`` (PEM files) an ``mqtts`` listener runs on
  ``tls_port`` beside the plain one; ``port=None`` leaves TLS as the only listener.
"""

import errno
import logging
from pathlib import Path
from typing import Any

from amqtt.errors import BrokerError as AmqttBrokerError

from broker.amqtt_broker import GuardedBroker
from broker.errors import BrokerStartError
from broker.principals import Authenticator

log = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD = 16384
DEFAULT_TLS_PORT = 8883


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class EmbeddedBroker:
    """An MQTT 3.1.1 broker inside the running event loop.

    ``keepalive_grace``: a client silent for longer than keepalive x grace is
    disconnected and its will published (Mosquitto uses 1.5).
    """

    def __init__(
        self,
        host: str,
        port: int | None,
        authenticator: Authenticator,
        *,
        keepalive_grace: float = 1.5,
        websocket_port: int | None = None,
        connect_timeout: float = 10.0,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_port: int = DEFAULT_TLS_PORT,
    ) -> None:
        if keepalive_grace < 1.0:
            raise ValueError("keepalive_grace must be at least 1.0")
        if max_payload < 1:
            raise ValueError("max_payload must be at least 1")
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("a TLS listener needs both a certificate and a key")
        if port is None and tls_cert is None:
            raise ValueError("no listener: give a port, or a TLS certificate and key")
        self.host = host
        self.port = port
        self.websocket_port = websocket_port
        self.max_payload = max_payload
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.tls_port = tls_port if tls_cert is not None else None
        self._authenticator = authenticator
        self._keepalive_grace = keepalive_grace
        self._connect_timeout = connect_timeout
        self._broker: GuardedBroker | None = None

    def _config(self) -> dict[str, Any]:
        listeners: dict[str, Any] = {}
        if self.port is not None:
            listeners["default"] = {"type": "tcp", "bind": _bind(self.host, self.port)}
        if self.tls_port is not None:
            listeners["mqtts" if listeners else "default"] = {
                "type": "tcp",
                "bind": _bind(self.host, self.tls_port),
                "ssl": True,
                "certfile": str(self.tls_cert),
                "keyfile": str(self.tls_key),
            }
        if self.websocket_port is not None:
            listeners["ws"] = {"type": "ws", "bind": _bind(self.host, self.websocket_port)}
        return {"listeners": listeners, "plugins": {}}

    @property
    def running(self) -> bool:
        return self._broker is not None

    async def start(self) -> None:
        """Open the listeners; raises :class:`BrokerStartError` if one cannot bind."""
        if self._broker is not None:
            raise RuntimeError("broker already started")
        broker = GuardedBroker(
            self._config(),
            self._authenticator,
            keepalive_grace=self._keepalive_grace,
            connect_timeout=self._connect_timeout,
            max_payload=self.max_payload,
        )
        try:
            await broker.start()
        except AmqttBrokerError as exc:
            cause = exc.__cause__
            code = cause.errno if isinstance(cause, OSError) else None
            where = self._where()
            if self.websocket_port is not None:
                where += f" (websocket {_bind(self.host, self.websocket_port)})"
            if code == errno.EADDRINUSE:
                reason = "the port is already in use (another MQTT broker?)"
            else:
                reason = str(cause or exc)
            if self.tls_port is not None:
                reason += (
                    " (TLS: SMARTVEND_MQTT_TLS_CERT, SMARTVEND_MQTT_TLS_KEY, SMARTVEND_MQTTS_PORT)"
                )
            raise BrokerStartError(
                code or errno.EIO,
                f"embedded MQTT broker cannot listen on {where}: {reason}. "
                "Pick another address with SMARTVEND_MQTT_HOST/SMARTVEND_MQTT_PORT, "
                "or use an external broker with SMARTVEND_MQTT_URL.",
            ) from exc
        self._broker = broker
        log.info("embedded MQTT broker listening on %s", self._where())

    def _where(self) -> str:
        parts = [] if self.port is None else [_bind(self.host, self.port)]
        if self.tls_port is not None:
            parts.append(f"mqtts {_bind(self.host, self.tls_port)}")
        return ", ".join(parts)

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def disconnect(self, username: str) -> bool:
        """Close ``username``'s connection (after its key was revoked or rotated).

        The close counts as abnormal, so its will is published. Returns whether a
        connected client was found. The authenticator must already refuse the old
        key, or the client simply reconnects.
        """
        if self._broker is None:
            return False
        return await self._broker.kick_account(username)

    def connected_clients(self) -> set[str]:
        """Client ids with a live connection: usernames, and ids the broker assigned."""
        return set() if self._broker is None else self._broker.connected_clients()

    def stats(self) -> dict[str, int]:
        """Counters of what the broker dropped or refused since it started."""
        return {} if self._broker is None else self._broker.stats.as_dict()

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
  after start.
"""

import errno
import logging
from typing import Any

from amqtt.errors import BrokerError as AmqttBrokerError

from broker.amqtt_broker import GuardedBroker
from broker.errors import BrokerStartError
from broker.principals import Authenticator

log = logging.getLogger(__name__)


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
        port: int,
        authenticator: Authenticator,
        *,
        keepalive_grace: float = 1.5,
        websocket_port: int | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        if keepalive_grace < 1.0:
            raise ValueError("keepalive_grace must be at least 1.0")
        self.host = host
        self.port = port
        self.websocket_port = websocket_port
        self._authenticator = authenticator
        self._keepalive_grace = keepalive_grace
        self._connect_timeout = connect_timeout
        self._broker: GuardedBroker | None = None

    def _config(self) -> dict[str, Any]:
        listeners: dict[str, Any] = {
            "default": {"type": "tcp", "bind": _bind(self.host, self.port)},
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
        )
        try:
            await broker.start()
        except AmqttBrokerError as exc:
            cause = exc.__cause__
            code = cause.errno if isinstance(cause, OSError) else None
            where = _bind(self.host, self.port)
            if self.websocket_port is not None:
                where += f" (websocket {_bind(self.host, self.websocket_port)})"
            if code == errno.EADDRINUSE:
                reason = "the port is already in use (another MQTT broker?)"
            else:
                reason = str(cause or exc)
            raise BrokerStartError(
                code or errno.EIO,
                f"embedded MQTT broker cannot listen on {where}: {reason}. "
                "Pick another address with SMARTVEND_MQTT_HOST/SMARTVEND_MQTT_PORT, "
                "or use an external broker with SMARTVEND_MQTT_URL.",
            ) from exc
        self._broker = broker
        log.info("embedded MQTT broker listening on %s", _bind(self.host, self.port))

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
        return await self._broker.kick(username)

    def connected_clients(self) -> set[str]:
        """Usernames (= client ids) with a live connection."""
        return set() if self._broker is None else self._broker.connected_clients()

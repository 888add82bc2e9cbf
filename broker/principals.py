"""Who is connected: the authenticated identity the access rules are about."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from broker.passwords import verify_secret

Role = Literal["machine", "server", "integrator", "home_assistant"]
ROLES: tuple[Role, ...] = ("machine", "server", "integrator", "home_assistant")
DEFAULT_DISCOVERY_PREFIX = "homeassistant"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated MQTT client: its role and its username (a machine's id).

    ``discovery_prefix``: for a Home Assistant account, the discovery prefix it
    reads (None: Home Assistant's default)."""

    role: str
    username: str
    discovery_prefix: str | None = None


class Authenticator(Protocol):
    """Checks CONNECT credentials; None refuses the connection."""

    async def authenticate(self, username: str, password: str, client_id: str) -> Principal | None:
        """The principal for these credentials, or None to refuse."""
        ...


def admissible(principal: Principal, client_id: str) -> bool:
    """Connection rules that hold whatever the credential store.

    A machine must connect with its client id equal to its username.
    """
    if principal.role not in ROLES or not principal.username:
        return False
    return principal.role != "machine" or client_id == principal.username


class StaticAuthenticator:
    """Accounts held in memory: ``{username: (role, stored $7$ hash)}``.

    For tests and small deployments. ``set`` and ``remove`` change it while running
    (a removed account is refused on its next CONNECT; kick live clients with
    ``EmbeddedBroker.disconnect``).
    """

    def __init__(self, accounts: Mapping[str, tuple[str, str]] | None = None) -> None:
        self._accounts: dict[str, tuple[str, str]] = {}
        for username, (role, stored) in (accounts or {}).items():
            self.set(username, role, stored)

    def set(self, username: str, role: str, stored_hash: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if not username:
            raise ValueError("username must not be empty")
        self._accounts[username] = (role, stored_hash)

    def remove(self, username: str) -> None:
        self._accounts.pop(username, None)

    async def authenticate(self, username: str, password: str, client_id: str) -> Principal | None:
        account = self._accounts.get(username)
        if account is None or not username:
            return None
        role, stored = account
        if not verify_secret(password, stored):
            return None
        principal = Principal(role=role, username=username)
        return principal if admissible(principal, client_id) else None

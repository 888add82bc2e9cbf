"""MQTT accounts from the database: machines, the server's service account, integrators.

The embedded broker asks :class:`DatabaseAuthenticator` on every CONNECT, so a
revoked key or integrator is refused from its next connection on (close a live
one with ``EmbeddedBroker.disconnect``).  :func:`mosquitto_accounts` lists the
same accounts for an external Mosquitto's password and ACL files.

A username means one account: the server's name first, then a machine id, then
an integrator.  Integrator names that a machine or the server already uses are
refused when the integrator is created, and skipped if a machine took the name
later.
"""

import logging
import secrets
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.clock import Clock
from api.errors import Conflict, InvalidRequest, NotFound
from api.security.derived_keys import derive_secret
from api.settings import Settings
from broker.passwords import hash_secret, verify_secret
from broker.principals import Principal, admissible
from schema import topics
from schema.models import Integrator, Machine

log = logging.getLogger(__name__)

SERVER_USERNAME = "smartvend-server"
SERVER_SECRET_PURPOSE = "mqtt-server"  # noqa: S105 - a derivation label, not a secret
MAX_INTEGRATOR_NAME = 64
# An integrator whose description starts with this mark is a Home Assistant account
# (role ``home_assistant``, broker.acl); nobody else's description may start with it.
HOME_ASSISTANT_MARK = "[home-assistant]"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")

Account = tuple[str, str, str]  # (username, role, stored $7$ hash)


@dataclass(frozen=True)
class ServerCredentials:
    """Where and how the server's bridge logs in to the broker."""

    host: str
    port: int
    username: str
    password: str
    tls: bool = False


def server_password(settings: Settings) -> str:
    """The server's own MQTT password on the embedded broker, derived from SECRET_KEY."""
    return derive_secret(settings, SERVER_SECRET_PURPOSE)


def server_credentials(settings: Settings) -> ServerCredentials:
    """The bridge's login: the embedded broker's service account, or ``MQTT_URL``'s.

    ``MQTT_URL`` without a user or password falls back to ``smartvend-server`` and
    the password derived from SECRET_KEY, the same that ``write_mosquitto_config``
    is given through this function, so a generated Mosquitto needs no secret in
    the URL.
    """
    if settings.mqtt_url is None:
        host = settings.mqtt_host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - connecting, not binding
            host = "127.0.0.1"
        return ServerCredentials(
            host, settings.mqtt_port, SERVER_USERNAME, server_password(settings)
        )
    parts = urlsplit(settings.mqtt_url)
    tls = parts.scheme == "mqtts"
    return ServerCredentials(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else SERVER_USERNAME,
        password=unquote(parts.password) if parts.password else server_password(settings),
        tls=tls,
    )


def integrator_role(description: str | None) -> str:
    """``home_assistant`` for an account made with ``--home-assistant``, else ``integrator``."""
    marked = description is not None and description.startswith(HOME_ASSISTANT_MARK)
    return "home_assistant" if marked else "integrator"


def valid_integrator_name(username: str) -> bool:
    """1 to 64 characters from ``A-Z a-z 0-9 _ - .``."""
    return 1 <= len(username) <= MAX_INTEGRATOR_NAME and all(ch in _NAME_CHARS for ch in username)


class DatabaseAuthenticator:
    """``broker.principals.Authenticator`` over the machines and integrators tables."""

    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        server_username: str,
        server_password_hash: str,
        *,
        discovery_prefix: str | None = None,
    ) -> None:
        self._db = db
        self._server_username = server_username
        self._server_hash = server_password_hash
        self._discovery_prefix = discovery_prefix  # what Home Assistant accounts read

    async def authenticate(self, username: str, password: str, client_id: str) -> Principal | None:
        principal = await self._lookup(username, password)
        if principal is None or not admissible(principal, client_id):
            return None
        return principal

    async def _lookup(self, username: str, password: str) -> Principal | None:
        if not username or not password:
            return None
        if username == self._server_username:
            if verify_secret(password, self._server_hash):
                return Principal(role="server", username=username)
            return None
        async with self._db() as s:
            if topics.is_machine_id(username):
                machine = await s.get(Machine, username)
                if machine is not None:
                    if machine.key_revoked or not verify_secret(password, machine.api_key_hash):
                        return None
                    return Principal(role="machine", username=username)
            integrator = await s.scalar(select(Integrator).where(Integrator.username == username))
        if integrator is None or integrator.revoked:
            return None
        if not verify_secret(password, integrator.password_hash):
            return None
        if integrator_role(integrator.description) == "home_assistant":
            return Principal("home_assistant", username, discovery_prefix=self._discovery_prefix)
        return Principal(role="integrator", username=username)


async def mosquitto_accounts(
    db: async_sessionmaker[AsyncSession], server_username: str, server_password_hash: str
) -> list[Account]:
    """Every account that may log in, as ``(username, role, stored_hash)`` triples."""
    accounts: list[Account] = [(server_username, "server", server_password_hash)]
    async with db() as s:
        machines = (
            await s.execute(
                select(Machine.id, Machine.api_key_hash)
                .where(Machine.key_revoked.is_(False))
                .order_by(Machine.id)
            )
        ).all()
        all_machine_ids = set((await s.scalars(select(Machine.id))).all())
        integrators = (
            await s.execute(
                select(Integrator.username, Integrator.password_hash, Integrator.description)
                .where(Integrator.revoked.is_(False))
                .order_by(Integrator.username)
            )
        ).all()
    for machine_id, stored in machines:
        if machine_id == server_username:
            log.warning("machine %s has the server's username; it cannot log in", machine_id)
            continue
        accounts.append((machine_id, "machine", stored))
    for username, stored, description in integrators:
        if username == server_username or username in all_machine_ids:
            log.warning("integrator %s shares its name with another account; skipped", username)
            continue
        accounts.append((username, integrator_role(description), stored))
    return accounts


async def create_integrator(
    db: async_sessionmaker[AsyncSession],
    clock: Clock,
    username: str,
    description: str | None = None,
    *,
    home_assistant: bool = False,
) -> tuple[Integrator, str]:
    """A read-only MQTT account; its password is returned here once and stored hashed.

    ``home_assistant``: an account for Home Assistant (``broker.acl``), marked by
    :data:`HOME_ASSISTANT_MARK` at the start of its description."""
    if not valid_integrator_name(username):
        raise InvalidRequest("integrator name must be 1 to 64 of A-Z a-z 0-9 _ - .")
    if username == SERVER_USERNAME:
        raise Conflict(f"{username} is the server's account")
    if description is not None and description.startswith(HOME_ASSISTANT_MARK):
        raise InvalidRequest(f"a description may not start with {HOME_ASSISTANT_MARK}")
    if home_assistant:
        description = f"{HOME_ASSISTANT_MARK} {description or 'Home Assistant'}"
    if description is not None and len(description) > 200:
        raise InvalidRequest("description must be at most 200 characters")
    password = secrets.token_urlsafe(24)
    try:
        async with db.begin() as s:
            if await s.get(Machine, username) is not None:
                raise Conflict(f"{username} is a machine id")
            taken = await s.scalar(select(Integrator.id).where(Integrator.username == username))
            if taken is not None:
                raise Conflict(f"integrator {username} already exists")
            integrator = Integrator(
                username=username,
                password_hash=hash_secret(password),
                description=description,
                revoked=False,
                created_at=clock.now(),
            )
            s.add(integrator)
    except IntegrityError as exc:
        raise Conflict(f"integrator {username} already exists") from exc
    return integrator, password


async def revoke_integrator(db: async_sessionmaker[AsyncSession], username: str) -> None:
    """Refuse the integrator's next CONNECT (and drop it from Mosquitto's files)."""
    async with db.begin() as s:
        integrator = await s.scalar(select(Integrator).where(Integrator.username == username))
        if integrator is None:
            raise NotFound(f"no integrator {username}")
        integrator.revoked = True


async def list_integrators(db: async_sessionmaker[AsyncSession]) -> list[Integrator]:
    async with db() as s:
        return list((await s.scalars(select(Integrator).order_by(Integrator.username))).all())

"""Configuration for an external Mosquitto 2.0 broker, generated from account data.

Takes plain ``(username, role, stored_hash)`` triples (no database access here) and
writes the three files Mosquitto needs. The access rules are the embedded broker's
(:mod:`broker.acl`), written as one ``user`` block per account. Mosquitto's
``pattern`` lines (``%u``) would apply to *every* account, so an integrator whose
name happened to equal a machine id would inherit that machine's topics; per-user
blocks avoid that. Regenerate and reload (SIGHUP) Mosquitto when accounts change.

``use_username_as_clientid`` makes every client id equal to its username, as in the
embedded broker: one live connection per account, and nobody can take over a
machine's session by borrowing its id.

Several server workers each need a client id of their own, which that rule
forbids. A :class:`ServerListener` adds a second listener (on a private address)
that admits only the server's account and leaves client ids to the client, so
workers connect there with ids like ``smartvend-server-1a2b3c4d``. Mosquitto's
per-client queue (``max_queued_messages``, 1,000 by default) is raised for
every client, since Mosquitto 2.0 sets it only globally: a server worker that
falls behind during a burst must not lose QoS 1 messages.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from broker.acl import publish_patterns, receive_patterns
from broker.passwords import is_hash
from broker.principals import ROLES, Principal
from schema import topics

Account = tuple[str, str, str]

DEFAULT_MAX_PAYLOAD = 16384  # bytes, as the embedded broker's MQTT_MAX_PAYLOAD

_FORBIDDEN_IN_NAME = frozenset(":#+$ \t\r\n\x00")
MAX_QUEUED_MESSAGES = 100_000


@dataclass(frozen=True)
class ServerListener:
    """A listener for the server's workers only: their own client ids, their own files."""

    port: int
    host: str
    password_file: str
    acl_file: str


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener for machines, with the same accounts and rules as the plain one."""

    port: int
    host: str
    certfile: str
    keyfile: str


def _check_account(username: str, role: str) -> None:
    if not username or any(ch in _FORBIDDEN_IN_NAME for ch in username):
        raise ValueError(f"username {username!r} cannot be used in a Mosquitto password file")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} for {username!r}")
    if role == "machine" and not topics.is_machine_id(username):
        raise ValueError(f"machine username {username!r} is not a valid machine id")


def password_file(accounts: Iterable[Account]) -> str:
    """A Mosquitto ``password_file``: ``username:$7$...`` per account."""
    lines = []
    for username, role, stored_hash in accounts:
        _check_account(username, role)
        if not is_hash(stored_hash):
            raise ValueError(f"stored hash of {username!r} is not in Mosquitto's $7$ format")
        lines.append(f"{username}:{stored_hash}\n")
    return "".join(lines)


def _rules(principal: Principal) -> list[str]:
    if principal.role == "server":
        # "#" does not reach "$SYS/..." topics; the service account may read those too.
        return ["topic readwrite #", "topic read $SYS/#"]
    rules = [f"topic write {pattern}" for pattern in publish_patterns(principal)]
    rules += [f"topic read {pattern}" for pattern in receive_patterns(principal)]
    return rules


def acl_file(accounts: Iterable[Account], *, discovery_prefix: str | None = None) -> str:
    """A Mosquitto ``acl_file`` granting each account exactly its role's topics.

    ``discovery_prefix``: what Home Assistant accounts read (None: its default)."""
    blocks = []
    for username, role, _stored in accounts:
        _check_account(username, role)
        prefix = discovery_prefix if role == "home_assistant" else None
        rules = _rules(Principal(role=role, username=username, discovery_prefix=prefix))
        blocks.append("\n".join([f"user {username}", *rules]) + "\n")
    return "\n".join(blocks)


def _check_path(value: str) -> str:
    if not value or any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"unusable path {value!r}")
    return value


def mosquitto_conf(
    *,
    port: int,
    host: str,
    password_file: str,
    acl_file: str,
    persistence_dir: str | None,
    server_listener: ServerListener | None = None,
    tls_listener: TlsListener | None = None,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> str:
    """A ``mosquitto.conf`` with one authenticated listener on ``host:port``
    (and the workers' own listener when ``server_listener`` is given).

    ``message_size_limit`` drops publishes over ``max_payload`` bytes (QoS flows still
    complete), as the embedded broker does with ``MQTT_MAX_PAYLOAD``.
    """
    extra = [x.port for x in (server_listener, tls_listener) if x is not None]
    for checked in (port, *extra):
        if not 0 < checked < 65536:
            raise ValueError(f"invalid port {checked}")
    if max_payload < 1:
        raise ValueError(f"invalid payload limit {max_payload}")
    lines = [
        "# Generated by SmartVend from its account data; edit the accounts, not this file.",
        "per_listener_settings true",
        "set_tcp_nodelay true",
        # The server's one subscription takes every machine's messages; its queue
        # must hold a burst while the server applies the previous batch (the
        # default, 1,000, drops the rest). Machines subscribe to little.
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"message_size_limit {max_payload}",
    ]
    if persistence_dir is None:
        lines.append("persistence false")
    else:
        directory = _check_path(persistence_dir).rstrip("/") + "/"
        lines += ["persistence true", f"persistence_location {directory}"]
    lines += [
        "",
        f"listener {port} {_check_path(host)}",
        "allow_anonymous false",
        "use_username_as_clientid true",
        f"password_file {_check_path(password_file)}",
        f"acl_file {_check_path(acl_file)}",
    ]
    if tls_listener is not None:
        lines += [
            "",
            "# Machines over TLS: the same accounts and rules as above.",
            f"listener {tls_listener.port} {_check_path(tls_listener.host)}",
            f"certfile {_check_path(tls_listener.certfile)}",
            f"keyfile {_check_path(tls_listener.keyfile)}",
            "allow_anonymous false",
            "use_username_as_clientid true",
            f"password_file {_check_path(password_file)}",
            f"acl_file {_check_path(acl_file)}",
        ]
    if server_listener is not None:
        lines += [
            "",
            "# The server's workers: each chooses its own client id.",
            f"listener {server_listener.port} {_check_path(server_listener.host)}",
            "allow_anonymous false",
            f"password_file {_check_path(server_listener.password_file)}",
            f"acl_file {_check_path(server_listener.acl_file)}",
        ]
    return "\n".join(lines) + "\n"

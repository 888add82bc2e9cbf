"""Configuration files for an external Mosquitto, written from the database.

``passwd`` and ``acl`` list the server's account, every machine whose key is
not revoked and every active integrator; ``mosquitto.conf`` points at them.
Files are replaced atomically, so Mosquitto can be told to reload (SIGHUP) at
any time.  Rewrite them whenever a machine or integrator is added or revoked.

For fleets larger than one broker process holds, :func:`write_edge_configs`
writes a core broker for the server's workers and edge brokers for machines,
bridged to it.
"""

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.mqtt.accounts import mosquitto_accounts
from broker import mosquitto
from broker.passwords import hash_secret
from schema import topics

PASSWORD_FILE = "passwd"  # noqa: S105 - a file name
ACL_FILE = "acl"
SERVER_PASSWORD_FILE = "passwd-server"  # noqa: S105 - a file name
SERVER_ACL_FILE = "acl-server"
CONF_FILE = "mosquitto.conf"
# Mosquitto started as root reads its files as the ``mosquitto`` user: keep them
# readable. The password file holds only hashes of long random keys.
FILE_MODE = 0o644


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, FILE_MODE)
    tmp.replace(path)
    return path


def _write_all(
    accounts: list[tuple[str, str, str]],
    out_dir: Path,
    port: int,
    host: str,
    persistence: Path | None,
    server: tuple[int, str] | None,
    tls: mosquitto.TlsListener | None,
    max_payload: int,
    discovery_prefix: str | None = None,
) -> list[Path]:
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    listener = None
    if server is not None:
        # The workers' listener takes the server's account; the machines' one does not,
        # so a worker can never land where client ids are forced to the username.
        servers = [account for account in accounts if account[1] == "server"]
        accounts = [account for account in accounts if account[1] != "server"]
        written += [
            _write(out_dir / SERVER_PASSWORD_FILE, mosquitto.password_file(servers)),
            _write(out_dir / SERVER_ACL_FILE, mosquitto.acl_file(servers)),
        ]
        listener = mosquitto.ServerListener(
            port=server[0],
            host=server[1],
            password_file=str(written[0]),
            acl_file=str(written[1]),
        )
    passwd = _write(out_dir / PASSWORD_FILE, mosquitto.password_file(accounts))
    acl = _write(
        out_dir / ACL_FILE, mosquitto.acl_file(accounts, discovery_prefix=discovery_prefix)
    )
    conf = _write(
        out_dir / CONF_FILE,
        mosquitto.mosquitto_conf(
            port=port,
            host=host,
            password_file=str(passwd),
            acl_file=str(acl),
            persistence_dir=None if persistence is None else str(persistence.resolve()),
            server_listener=listener,
            tls_listener=tls,
            max_payload=max_payload,
        ),
    )
    return [passwd, acl, *written, conf]


async def write_mosquitto_config(
    db: async_sessionmaker[AsyncSession],
    out_dir: Path,
    *,
    port: int,
    host: str,
    server_username: str,
    server_password: str,
    persistence_dir: Path | None = None,
    server_port: int | None = None,
    server_host: str = "127.0.0.1",
    tls: mosquitto.TlsListener | None = None,
    max_payload: int = mosquitto.DEFAULT_MAX_PAYLOAD,
    discovery_prefix: str | None = None,
) -> list[Path]:
    """Write ``passwd``, ``acl`` and ``mosquitto.conf`` into ``out_dir``; return their paths.

    ``persistence_dir``: where Mosquitto keeps retained messages across restarts
    (None: in memory only; the server republishes its retained state anyway).
    ``server_port``: a second listener for the server's workers on
    ``server_host:server_port`` (``passwd-server`` and ``acl-server``), where each
    worker keeps its own client id; needed to run ``serve --workers N``.
    ``tls``: a TLS listener for machines (same accounts and rules as ``port``).
    ``max_payload``: publishes over this many bytes are dropped (``MQTT_MAX_PAYLOAD``).
    ``discovery_prefix``: what Home Assistant accounts may read (``HA_DISCOVERY_PREFIX``).
    """
    accounts = await mosquitto_accounts(db, server_username, hash_secret(server_password))
    server = None if server_port is None else (server_port, server_host)
    return await asyncio.to_thread(
        _write_all,
        accounts,
        out_dir,
        port,
        host,
        persistence_dir,
        server,
        tls,
        max_payload,
        discovery_prefix,
    )


# -- Edge brokers bridged to a core broker ---------------------------------------------

EDGE_DIR = "edge-{n}"
CORE_DIR = "core"
# What an edge forwards to the core (machines' messages) and takes from it (the
# server's to machines), with the QoS each is published at.
EDGE_OUT = (("status", 1), ("reported", 1), ("telemetry", 0), ("events", 1), ("results", 1))
EDGE_IN = (("desired", 1), ("cmd", 1))


@dataclass(frozen=True)
class EdgeLayout:
    """Where a core broker and its edges listen, and the edges' account at the core."""

    core_port: int  # the edges' bridges connect here
    server_port: int  # the server's workers connect here
    edge_ports: tuple[int, ...]  # machines connect to these, one broker each
    edge_username: str
    edge_password: str
    host: str = "127.0.0.1"


def edge_username(base: str, n: int) -> str:
    """Edge ``n``'s account at the core."""
    return f"{base}-{n}"


def _bridge_section(n: int, layout: EdgeLayout) -> list[str]:
    lines = [
        "",
        "# This edge's bridge to the core broker: machines' messages up, the server's down.",
        "connection core",
        f"address {_check_host(layout.host)}:{layout.core_port}",
        "bridge_protocol_version mqttv311",
        f"remote_clientid smartvend-edge-{n}",
        f"remote_username {edge_username(layout.edge_username, n)}",
        f"remote_password {layout.edge_password}",
        "cleansession true",
        "try_private true",
        "notifications false",
        "start_type automatic",
        "restart_timeout 1 10",
        "keepalive_interval 30",
        # A burst must wait in the edge rather than be dropped on the way to the core.
        "max_queued_messages 0",
    ]
    lines += [f"topic {topics.machine_filter(kind)} out {qos}" for kind, qos in EDGE_OUT]
    lines += [f"topic {topics.machine_filter(kind)} in {qos}" for kind, qos in EDGE_IN]
    lines.append(f"topic {topics.SERVER_STATUS} in 1")
    return lines


def _check_host(host: str) -> str:
    if not host or any(ch in host for ch in " \t\r\n\x00:"):
        raise ValueError(f"unusable host {host!r}")
    return host


def _edge_files(
    accounts: list[tuple[str, str, str]],
    out_dir: Path,
    layout: EdgeLayout,
    max_payload: int,
    assign: Callable[[str], int] | None,
) -> dict[str, Path]:
    out_dir = out_dir.resolve()
    core = out_dir / CORE_DIR
    core.mkdir(parents=True, exist_ok=True)
    servers = [account for account in accounts if account[1] == "server"]
    machines = [account for account in accounts if account[1] != "server"]
    base = layout.edge_username
    if any(ch in base for ch in ":#+$ \t\r\n\x00") or not base:
        raise ValueError(f"unusable edge account name {base!r}")
    # One account per edge: the core forces client id = username, as for machines.
    edges = [edge_username(base, n) for n in range(1, len(layout.edge_ports) + 1)]
    edge_hash = hash_secret(layout.edge_password)
    edge_acl = "".join(f"user {name}\ntopic readwrite {topics.ROOT}/#\n\n" for name in edges)
    written = {
        "core": _write(
            core / CONF_FILE,
            mosquitto.mosquitto_conf(
                port=layout.core_port,
                host=layout.host,
                password_file=str(
                    _write(core / "passwd-edge", "".join(f"{e}:{edge_hash}\n" for e in edges))
                ),
                acl_file=str(_write(core / "acl-edge", edge_acl)),
                persistence_dir=None,
                server_listener=mosquitto.ServerListener(
                    port=layout.server_port,
                    host=layout.host,
                    password_file=str(
                        _write(core / SERVER_PASSWORD_FILE, mosquitto.password_file(servers))
                    ),
                    acl_file=str(_write(core / SERVER_ACL_FILE, mosquitto.acl_file(servers))),
                ),
                max_payload=max_payload,
            ),
        )
    }
    for n, port in enumerate(layout.edge_ports, start=1):
        edge = out_dir / EDGE_DIR.format(n=n)
        edge.mkdir(parents=True, exist_ok=True)
        # Each edge knows only its own machines' accounts (``assign``), or all of them.
        own = [a for a in machines if assign is None or a[1] != "machine" or assign(a[0]) == n]
        passwd = _write(edge / PASSWORD_FILE, mosquitto.password_file(own))
        acl = _write(edge / ACL_FILE, mosquitto.acl_file(own))
        conf = mosquitto.mosquitto_conf(
            port=port,
            host=layout.host,
            password_file=str(passwd),
            acl_file=str(acl),
            persistence_dir=None,
            max_payload=max_payload,
        )
        text = conf + "\n".join(_bridge_section(n, layout)) + "\n"
        written[f"edge-{n}"] = _write(edge / CONF_FILE, text)
    return written


async def write_edge_configs(
    db: async_sessionmaker[AsyncSession],
    out_dir: Path,
    layout: EdgeLayout,
    *,
    server_username: str,
    server_password: str,
    max_payload: int = mosquitto.DEFAULT_MAX_PAYLOAD,
    assign: Callable[[str], int] | None = None,
) -> dict[str, Path]:
    """A core broker and edge brokers bridged to it, for fleets larger than one
    broker process holds (docs/deployment.md, "Large fleets").

    The core (``core/mosquitto.conf``) has the workers' listener (``server_port``, the
    server's account) and the edges' listener (``core_port``, the edge account only).
    Each edge (``edge-N/mosquitto.conf``) has the machines' listener on its port, with
    the accounts and rules ``write_mosquitto_config`` writes, and a bridge that sends
    the machines' messages up to the core and brings ``desired``, ``cmd`` and the
    server's status down. Returns the configuration files by broker name.

    ``assign`` maps a machine id to the edge (1..N) it connects to, so that each edge
    lists only its own machines (Mosquitto reads its account files at start and looks
    a client's access rules up in a list: 100,000 accounts per broker take minutes);
    without it every edge admits every machine.
    """
    accounts = await mosquitto_accounts(db, server_username, hash_secret(server_password))
    return await asyncio.to_thread(_edge_files, accounts, out_dir, layout, max_payload, assign)

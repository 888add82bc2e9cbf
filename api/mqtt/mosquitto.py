"""Configuration files for an external Mosquitto, written from the database.

``passwd`` and ``acl`` list the server's account, every machine whose key is
not revoked and every active integrator; ``mosquitto.conf`` points at them.
Files are replaced atomically, so Mosquitto can be told to reload (SIGHUP) at
any time.  Rewrite them whenever a machine or integrator is added or revoked.
"""

import asyncio
import os
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.mqtt.accounts import mosquitto_accounts
from broker import mosquitto
from broker.passwords import hash_secret

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

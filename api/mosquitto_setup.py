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

from api.accounts import mosquitto_accounts
from broker import mosquitto
from broker.passwords import hash_secret

PASSWORD_FILE = "passwd"  # noqa: S105 - a file name
ACL_FILE = "acl"
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
    max_payload: int,
) -> list[Path]:
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    passwd = _write(out_dir / PASSWORD_FILE, mosquitto.password_file(accounts))
    acl = _write(out_dir / ACL_FILE, mosquitto.acl_file(accounts))
    conf = _write(
        out_dir / CONF_FILE,
        mosquitto.mosquitto_conf(
            port=port,
            host=host,
            password_file=str(passwd),
            acl_file=str(acl),
            persistence_dir=None if persistence is None else str(persistence.resolve()),
            max_payload=max_payload,
        ),
    )
    return [passwd, acl, conf]


async def write_mosquitto_config(
    db: async_sessionmaker[AsyncSession],
    out_dir: Path,
    *,
    port: int,
    host: str,
    server_username: str,
    server_password: str,
    persistence_dir: Path | None = None,
    max_payload: int = mosquitto.DEFAULT_MAX_PAYLOAD,
) -> list[Path]:
    """Write ``passwd``, ``acl`` and ``mosquitto.conf`` into ``out_dir``; return their paths.

    ``persistence_dir``: where Mosquitto keeps retained messages across restarts
    (None: in memory only; the server republishes its retained state anyway).
    ``max_payload``: publishes over this many bytes are dropped (``MQTT_MAX_PAYLOAD``).
    """
    accounts = await mosquitto_accounts(db, server_username, hash_secret(server_password))
    return await asyncio.to_thread(
        _write_all, accounts, out_dir, port, host, persistence_dir, max_payload
    )

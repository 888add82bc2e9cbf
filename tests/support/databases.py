"""Throwaway databases for tests: a private PostgreSQL and fresh SQLite files.

``PostgresServer`` runs ``initdb`` and ``pg_ctl`` from the installed binaries
in a temporary directory, listening on a free loopback port (never the
machine's own 5432 server). ``fresh_database()`` creates an empty database on
it and drops it again; ``sqlite_url()`` names a new SQLite file. URLs are plain
synchronous ones (``postgresql://``, ``sqlite:///``): ``Settings`` maps them to
the async drivers.
"""

import asyncio
import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from api.infra import migrations
from api.settings import Settings
from tests.support.ports import free_port

SUPERUSER = "postgres"
START_ATTEMPTS = 3
START_TIMEOUT_S = 60
# A test server: durability off, room for a pool per test plus concurrency tests.
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def postgres_bindir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` live; fails loudly (tests never skip) if nowhere."""
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p)],
        reverse=True,
    )
    for candidate in debian:
        if os.access(Path(candidate) / "pg_ctl", os.X_OK):
            return Path(candidate)
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) are missing: install them "
        "(apt-get install postgresql); the database tests start their own server "
        "and are never skipped"
    )


def _run_as() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` account then."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise RuntimeError(
            "running as root, and there is no 'postgres' account to run the test "
            "PostgreSQL server as (the postgresql package creates it)"
        ) from None
    return {"user": account.pw_uid, "group": account.pw_gid}


class PostgresServer:
    """A private PostgreSQL cluster on a free loopback port."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.host = "127.0.0.1"
        self.port = 0
        self.user = SUPERUSER
        self._as = _run_as()
        self._dir = Path(tempfile.mkdtemp(prefix="smartvend-pg-"))
        self._data = self._dir / "data"
        self._log = self._dir / "server.log"
        self._started = False

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
            cwd=self._dir,
            **self._as,
        )

    def start(self) -> None:
        if self._as:
            os.chown(self._dir, self._as["user"], self._as["group"])
        init = self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        failure = ""
        for _attempt in range(START_ATTEMPTS):
            self.port = free_port()
            options = {**SERVER_OPTIONS, "port": str(self.port)}
            options["unix_socket_directories"] = str(self._dir)
            started = self._run(
                "pg_ctl",
                "-D",
                str(self._data),
                "-l",
                str(self._log),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-o",
                " ".join(f"-c {k}={v}" for k, v in options.items()),
                "start",
            )
            if started.returncode == 0:
                self._started = True
                return
            failure = f"{started.stdout}\n{started.stderr}\n{self.log_text()}"
        raise RuntimeError(f"PostgreSQL did not start:\n{failure}")

    def stop(self) -> None:
        if self._started:
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
            self._started = False
        shutil.rmtree(self._dir, ignore_errors=True)

    def log_text(self) -> str:
        return self._log.read_text() if self._log.exists() else ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        )

    def create_database(self) -> str:
        """A new, empty database; returns its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A URL of an empty database that is dropped afterwards."""
        name = self.create_database()
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def sqlite_url(directory: Path, name: str = "smartvend.db") -> str:
    """The URL of a (not yet existing) SQLite file in ``directory``."""
    return f"sqlite:///{directory.resolve() / name}"


def migrate(url: str, revision: str = "head") -> None:
    """Bring ``url`` to ``revision`` with Alembic (blocking; Alembic runs its own loop)."""
    migrations.upgrade(Settings(database_url=url), revision)


async def migrate_async(url: str, revision: str = "head") -> None:
    """``migrate`` from inside a running loop: Alembic's env.py calls asyncio.run."""
    await asyncio.to_thread(migrate, url, revision)

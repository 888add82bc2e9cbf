"""The installed ``smartvend`` console script, run as a subprocess on a temporary SQLite file."""

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from api.cli import parser
from api.errors import InvalidCredentials
from api.server.runtime import open_runtime
from api.settings import ALIASES, Settings
from schema.models import Base
from tests.support.databases import migrate, sqlite_url
from tests.support.ports import free_port

SMARTVEND = Path(sys.executable).parent / "smartvend"
API_KEY = re.compile(r"\bsvk_[A-Za-z0-9_-]+")
PASSWORD = "correct horse battery"


class Cli:
    """Runs ``smartvend`` in ``workdir`` with only its own SMARTVEND_ variables set."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.url = sqlite_url(workdir)
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SMARTVEND_")
            and k not in ALIASES
            and k != "DISPLAY_CODE_TTL_MINUTES"
        }
        self.env = {
            **inherited,
            "SMARTVEND_DATABASE_URL": self.url,
            "SMARTVEND_VAR_DIR": str(workdir / "var"),
        }

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SMARTVEND), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env,
            timeout=60,
            check=False,
        )

    @property
    def settings(self) -> Settings:
        return Settings(database_url=self.url, var_dir=self.workdir / "var")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    assert SMARTVEND.exists(), f"{SMARTVEND} is missing: pip install -e . installs it"
    return Cli(tmp_path)


def table_names(settings: Settings) -> set[str]:
    async def run() -> set[str]:
        async with open_runtime(settings) as rt, rt.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))

    return asyncio.run(run())


def test_migrate_add_machine_once_and_list(cli: Cli) -> None:
    migrated = cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert set(Base.metadata.tables) <= table_names(cli.settings)

    added = cli("machine", "add", "m-1", "--name", "Lobby", "--price", "2500", "--stock", "5",
                "--capacity", "10")  # fmt: skip
    assert added.returncode == 0, added.stderr
    keys = API_KEY.findall(added.stdout)
    assert len(keys) == 1, added.stdout
    assert keys[0] not in added.stderr

    async def key_works(key: str) -> bool:
        async with open_runtime(cli.settings) as rt:
            return await rt.services.machines.authenticate("m-1", key)

    assert asyncio.run(key_works(keys[0]))
    assert not asyncio.run(key_works(keys[0] + "x"))

    again = cli("machine", "add", "m-1", "--name", "Other", "--price", "100", "--stock", "1")
    assert again.returncode == 2
    assert "m-1" in again.stderr and "already registered" in again.stderr
    assert "Traceback" not in again.stderr
    assert API_KEY.search(again.stdout + again.stderr) is None

    listed = cli("machine", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines() if line.startswith("m-1")]
    assert len(rows) == 1
    assert rows[0][:2] == ["m-1", "Lobby"]
    assert "5/10" in rows[0] and "25.00" in rows[0]
    assert "Other" not in listed.stdout


def test_admin_create_reads_the_password_from_stdin(cli: Cli) -> None:
    migrate(cli.url)

    created = cli("admin", "create", "alice", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    assert "alice" in created.stdout
    assert PASSWORD not in created.stdout + created.stderr

    async def login(password: str) -> str:
        async with open_runtime(cli.settings) as rt:
            user = await rt.services.admins.authenticate("alice", password)
            return user.username

    assert asyncio.run(login(PASSWORD)) == "alice"
    with pytest.raises(InvalidCredentials):
        asyncio.run(login(PASSWORD + "!"))

    twice = cli("admin", "create", "alice", stdin=PASSWORD + "\n")
    assert twice.returncode == 2
    assert "already exists" in twice.stderr


def test_admin_create_refuses_a_short_password(cli: Cli) -> None:
    migrate(cli.url)
    password = "short"
    refused = cli("admin", "create", "bob", stdin=password + "\n")
    assert refused.returncode == 2
    assert "at least 10 characters" in refused.stderr
    assert "Traceback" not in refused.stderr

    async def login() -> None:
        async with open_runtime(cli.settings) as rt:
            await rt.services.admins.authenticate("bob", password)

    with pytest.raises(InvalidCredentials):
        asyncio.run(login())


def test_commands_on_an_unmigrated_database_say_to_migrate(cli: Cli) -> None:
    done = cli("machine", "add", "m-1", "--price", "2500")
    assert done.returncode == 2
    assert "smartvend migrate" in done.stderr
    assert "Traceback" not in done.stderr
    assert API_KEY.search(done.stdout) is None


def test_bad_input_and_bad_settings_fail_clearly(cli: Cli) -> None:
    migrate(cli.url)
    cheap = cli("machine", "add", "m-1", "--price", "5", "--stock", "1")
    assert cheap.returncode == 2
    assert "price" in cheap.stderr and "Traceback" not in cheap.stderr

    cli.env["SMARTVEND_HTTP_PORT"] = "eighty"
    misconfigured = cli("machine", "list")
    assert misconfigured.returncode == 2
    assert "SMARTVEND_HTTP_PORT" in misconfigured.stderr
    assert "Traceback" not in misconfigured.stderr


def _every_parser(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _every_parser(child)


def test_every_option_and_argument_says_what_it_is() -> None:
    missing = [
        f"{p.prog} {a.option_strings or a.dest}"
        for p in _every_parser(parser())
        for a in p._actions
        if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction)
        and a.dest not in ("rest",)
        and not a.help
    ]
    assert missing == []


def test_help_reads_as_the_command_people_type(cli: Cli) -> None:
    top = cli("--help")
    assert top.returncode == 0 and "``" not in top.stdout and "smartvend" in top.stdout
    sim = cli("simulate", "--help")
    assert sim.returncode == 0
    assert "usage: smartvend simulate" in sim.stdout and "device.simulate" not in sim.stdout


def test_prices_in_rupees_or_paise_and_integrators_listed(cli: Cli) -> None:
    assert cli("migrate").returncode == 0
    for mid, price, shown in (("m-r", "25.50", "₹25.50"), ("m-s", "₹25", "₹25.00"),
                              ("m-p", "2500", "₹25.00")):  # fmt: skip
        added = cli("machine", "add", mid, "--price", price, "--stock", "1")
        assert added.returncode == 0, added.stderr
        assert f"selling at {shown}" in added.stdout
    refused = cli("machine", "add", "m-x", "--price", "25,50", "--stock", "1")
    assert refused.returncode == 2 and "rupees with a dot" in refused.stderr
    assert "no integrator accounts yet" in cli("integrator", "list").stdout
    assert cli("integrator", "add", "acme", "--description", "Acme BI").returncode == 0
    assert cli("integrator", "add", "zeta").returncode == 0
    assert cli("integrator", "revoke", "zeta").returncode == 0
    listed = cli("integrator", "list").stdout.splitlines()
    assert re.match(r"acme\s+active\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+Acme BI", listed[1]), listed
    assert re.match(r"zeta\s+revoked", listed[2]), listed
    assert "password" not in "\n".join(listed).lower()


def test_machines_run_by_the_simulator_preview_their_display_in_dev_mode(cli: Cli) -> None:
    assert cli("migrate").returncode == 0
    added = cli("machine", "add", "m-1", "--price", "2500", "--stock", "3")
    key = API_KEY.findall(added.stdout)[0]
    credentials = cli.workdir / "mine.json"
    credentials.write_text(json.dumps({"machines": [{"machine_id": "m-1", "api_key": key}]}))
    ran = cli("simulate", "--credentials", str(credentials), "--mqtt-url",
              f"mqtt://127.0.0.1:{free_port()}", "--duration", "0.5")  # fmt: skip
    assert "the shop pages of m-1 show their displays" in ran.stdout, ran.stdout + ran.stderr

    async def simulated() -> bool:
        async with open_runtime(cli.settings) as rt:
            return await rt.services.machines.is_simulated("m-1")

    assert asyncio.run(simulated())

"""``smartvend admin`` subcommands: users with roles, and their audit entries (actor cli)."""

import asyncio

from api.server.runtime import open_runtime
from api.services.audit import AuditFilter
from tests.api.test_cli import PASSWORD, Cli, cli  # noqa: F401 (the fixture)
from tests.support.databases import migrate


def audit_of(c: Cli) -> list[tuple[str, str, str, object]]:
    async def run() -> list[tuple[str, str, str, object]]:
        async with open_runtime(c.settings) as rt:
            entries = await rt.services.audit.entries(AuditFilter())
            return [(e.actor, e.action, e.target, e.after) for e in reversed(entries)]

    return asyncio.run(run())


def test_admin_subcommands_manage_users(cli: Cli) -> None:  # noqa: F811
    migrate(cli.url)
    assert cli("admin", "create", "root", stdin=PASSWORD + "\n").returncode == 0
    made = cli("admin", "create", "ravi", "--role", "restocker", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert "restocker ravi created" in made.stdout
    bad = cli("admin", "create", "x", "--role", "owner", stdin=PASSWORD + "\n")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr

    listed = cli("admin", "list")
    rows = {line.split()[0]: line.split()[1:] for line in listed.stdout.splitlines()[1:]}
    assert rows == {"ravi": ["restocker", "active", "all"], "root": ["admin", "active", "all"]}

    assert cli("admin", "role", "ravi", "operator").returncode == 0
    assert cli("admin", "passwd", "ravi", stdin=PASSWORD + "!\n").returncode == 0
    assert cli("admin", "disable", "ravi").returncode == 0
    last = cli("admin", "disable", "root")
    assert last.returncode != 0 and "last active admin" in last.stderr
    assert "Traceback" not in last.stderr
    listed = cli("admin", "list").stdout
    assert any(line.split()[:3] == ["ravi", "operator", "disabled"] for line in listed.splitlines())

    entries = audit_of(cli)
    assert [(a, act, t) for a, act, t, _ in entries] == [
        ("cli", "user_created", "user:root"),
        ("cli", "user_created", "user:ravi"),
        ("cli", "user_changed", "user:ravi"),
        ("cli", "user_changed", "user:ravi"),
        ("cli", "user_changed", "user:ravi"),
    ]
    after = [e[3] for e in entries]
    assert isinstance(after[2], dict) and after[2]["role"] == "operator"
    assert isinstance(after[4], dict) and after[4]["disabled"] is True
    assert PASSWORD not in str(entries)


def test_machine_add_and_rotate_key_are_audited(cli: Cli) -> None:  # noqa: F811
    migrate(cli.url)
    assert cli("machine", "add", "m-1", "--price", "2500", "--stock", "1").returncode == 0
    assert cli("machine", "rotate-key", "m-1").returncode == 0
    assert [(a, act, t) for a, act, t, _ in audit_of(cli)] == [
        ("cli", "machine_registered", "machine:m-1"),
        ("cli", "key_rotated", "machine:m-1"),
    ]

"""The ``smartvend`` command: serve, migrate, and what operators need."""

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from api.errors import ConfigurationError, SmartVendError
from api.firmware import cli as firmware_cli
from api.infra import migrations
from api.money import AmbiguousAmount, money, parse_rupees
from api.server.runtime import Runtime, open_runtime
from api.services import audit
from api.services.machines import NewMachine
from api.services.provision import mqtt_url_for_devices, provision
from api.settings import Settings


def _settings() -> Settings:
    return Settings.from_env(os.environ)


@contextlib.asynccontextmanager
async def _runtime() -> AsyncIterator[Runtime]:
    """The wired services, on a database that is migrated to the newest revision."""
    async with open_runtime(_settings()) as rt:
        await migrations.require_head(rt.engine)
        yield rt


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    migrations.upgrade(settings, args.revision)
    print(f"database at {args.revision}")
    return 0


AppFactory = Callable[[Settings], Any]


def cmd_serve(args: argparse.Namespace) -> int:
    from api.app import create_app
    from api.server.serve import serve

    settings = _settings()
    factory: AppFactory = args.app_factory or create_app
    workers = settings.workers if args.workers is None else args.workers
    if workers < 1:
        raise ConfigurationError("--workers must be at least 1")
    if workers > 1:
        from api.server.workers import serve_workers

        return serve_workers(factory, settings, workers, host=args.host, port=args.port)
    return serve(factory(settings), settings, host=args.host, port=args.port)


def cmd_mosquitto_config(args: argparse.Namespace) -> int:
    from api.mqtt.accounts import server_credentials
    from api.mqtt.mosquitto import write_mosquitto_config
    from broker.mosquitto import TlsListener

    settings = _settings().with_dev_secret()
    creds = server_credentials(settings)
    tls = None
    if args.tls_port:
        if not (args.tls_cert and args.tls_key):
            raise ConfigurationError("--tls-port needs --tls-cert and --tls-key")
        tls = TlsListener(
            port=args.tls_port,
            host=args.tls_host or args.host or settings.mqtt_host,
            certfile=str(Path(args.tls_cert).resolve()),
            keyfile=str(Path(args.tls_key).resolve()),
        )

    async def run() -> list[Path]:
        async with _runtime() as rt:
            return await write_mosquitto_config(
                rt.services.ctx.db,
                Path(args.out),
                port=args.port or settings.mqtt_port,
                host=args.host or settings.mqtt_host,
                server_username=creds.username,
                server_password=creds.password,
                server_port=args.server_port,
                server_host=args.server_host,
                tls=tls,
                max_payload=settings.mqtt_max_payload,
                discovery_prefix=settings.ha_discovery_prefix,
            )

    for path in asyncio.run(run()):
        print(f"wrote {path}")
    if args.server_port:
        print(
            "server workers connect to the second listener:",
            f"SMARTVEND_MQTT_URL=mqtt://{args.server_host}:{args.server_port}",
        )
    print(
        "run: mosquitto -c",
        Path(args.out) / "mosquitto.conf",
        "  (send it SIGHUP after re-running this when accounts change)",
    )
    return 0


def cmd_integrator_add(args: argparse.Namespace) -> int:
    from api.mqtt.accounts import create_integrator

    async def run() -> str:
        async with _runtime() as rt:
            _, password = await create_integrator(
                rt.services.ctx.db,
                rt.services.ctx.clock,
                args.username,
                args.description,
                home_assistant=args.home_assistant,
            )
            return password

    password = asyncio.run(run())
    if args.home_assistant:
        print(f"Home Assistant account {args.username} created (reads discovery and state only)")
    else:
        print(f"integrator {args.username} created (read-only MQTT)")
    print(f"password (shown once): {password}")
    return 0


def cmd_integrator_revoke(args: argparse.Namespace) -> int:
    from api.mqtt.accounts import revoke_integrator

    async def run() -> None:
        async with _runtime() as rt:
            await revoke_integrator(rt.services.ctx.db, args.username)

    asyncio.run(run())
    print(f"integrator {args.username} revoked")
    return 0


def cmd_integrator_list(_args: argparse.Namespace) -> int:
    from api.mqtt.accounts import list_integrators

    async def run() -> list[Any]:
        async with _runtime() as rt:
            return await list_integrators(rt.services.ctx.db)

    rows = asyncio.run(run())
    if not rows:
        print("no integrator accounts yet: smartvend integrator add NAME")
        return 0
    print(f"{'integrator':<24} {'state':<8} {'created (UTC)':<17} description")
    for row in rows:
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row.created_at))
        state = "revoked" if row.revoked else "active"
        print(f"{row.username:<24} {state:<8} {created:<17} {row.description or ''}")
    return 0


def machine_price(text: str) -> int:
    """``--price``: paise as a whole number (``2500``, as the v1 contract has it), or rupees
    written as rupees (``25.00``, ``₹25``, ``Rs 25``); the command prints what it read."""
    cleaned = text.strip()
    if cleaned.isascii() and cleaned.isdigit():
        return int(cleaned)
    try:
        return parse_rupees(cleaned)
    except AmbiguousAmount as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r}: paise as a whole number (2500) or rupees with a dot or ₹ (25.00, ₹25)"
        ) from exc


def cmd_machine_add(args: argparse.Namespace) -> int:
    async def run() -> str:
        async with _runtime() as rt:
            _, key = await rt.services.machines.register(
                NewMachine(
                    machine_id=args.machine_id,
                    name=args.name or args.machine_id,
                    price_amount=args.price,
                    capacity=args.capacity or max(args.stock, 1),
                    stock=args.stock,
                    location=args.location,
                ),
                by=audit.CLI,
            )
            return key

    key = asyncio.run(run())
    print(f"machine {args.machine_id} registered, selling at {money(args.price)}")
    print(f"api key (shown once, keep it for the machine's config): {key}")
    return 0


def cmd_machine_rotate_key(args: argparse.Namespace) -> int:
    async def run() -> str:
        async with _runtime() as rt:
            return await rt.services.machines.rotate_key(args.machine_id, by=audit.CLI)

    key = asyncio.run(run())
    print(f"new api key for {args.machine_id} (shown once): {key}")
    return 0


def cmd_machine_remove(args: argparse.Namespace) -> int:
    async def run() -> None:
        async with _runtime() as rt:
            await rt.services.machines.remove(args.machine_id, by=audit.CLI)

    asyncio.run(run())
    print(f"machine {args.machine_id} removed: its key no longer works; its sales stay in reports")
    return 0


def cmd_machine_list(_args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from schema.models import Machine

    async def run() -> list[Machine]:
        async with _runtime() as rt, rt.services.ctx.db.begin() as s:
            return list((await s.scalars(select(Machine).order_by(Machine.id))).all())

    rows = asyncio.run(run())
    print(f"{'machine':<20} {'name':<24} {'online':<7} {'stock':>9} {'price':>9}")
    for m in rows:
        print(
            f"{m.id:<20} {m.name[:24]:<24} {'yes' if m.online else 'no':<7} "
            f"{m.stock:>4}/{m.capacity:<4} {m.price_amount / 100:>9.2f}"
        )
    return 0


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if first != getpass.getpass("again: "):
            raise SmartVendError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_admin_create(args: argparse.Namespace) -> int:
    password = _read_password(f"password for {args.username}: ")

    async def run() -> None:
        async with _runtime() as rt:
            await rt.services.admins.create(args.username, password, args.role, by=audit.CLI)

    asyncio.run(run())
    print(f"{args.role} {args.username} created")
    return 0


def cmd_admin_list(_args: argparse.Namespace) -> int:
    async def run() -> list[Any]:
        async with _runtime() as rt:
            return await rt.services.admins.users()

    users = asyncio.run(run())
    print(f"{'user':<24} {'role':<10} {'state':<9} locations")
    for u in users:
        scope = "all" if u.locations is None else ", ".join(u.locations) or "none"
        state = "disabled" if u.disabled else "active"
        print(f"{u.username:<24} {u.role:<10} {state:<9} {scope}")
    return 0


def _change_user(username: str, change: Any) -> None:
    async def run() -> None:
        async with _runtime() as rt:
            await rt.services.admins.change(username, change, by=audit.CLI)

    asyncio.run(run())


def cmd_admin_disable(args: argparse.Namespace) -> int:
    from api.services.admins import UserChange

    _change_user(args.username, UserChange(disabled=not args.enable))
    print(f"{args.username} {'enabled' if args.enable else 'disabled'}")
    return 0


def cmd_admin_passwd(args: argparse.Namespace) -> int:
    from api.services.admins import UserChange

    password = _read_password(f"new password for {args.username}: ")
    _change_user(args.username, UserChange(password=password))
    print(f"new password set for {args.username}; their sessions and tokens have ended")
    return 0


def cmd_admin_role(args: argparse.Namespace) -> int:
    from api.services.admins import UserChange

    _change_user(args.username, UserChange(role=args.role))
    print(f"{args.username} is now {args.role}")
    return 0


def _mark_simulated(path: Path) -> None:
    """Machines run with ``--credentials`` are simulated: in dev mode their shop pages
    preview their displays, as for the machines ``make run`` starts."""
    settings = _settings()
    if not settings.dev or not path.is_file():
        return  # the simulator itself says what is wrong with a missing file
    try:
        ids = [str(e["machine_id"]) for e in json.loads(path.read_text())["machines"]]
    except (ValueError, KeyError, TypeError):
        return

    async def run() -> list[str]:
        async with _runtime() as rt:
            return await rt.services.machines.mark_simulated(ids)

    known = asyncio.run(run())
    if known:
        print(f"dev mode: the shop pages of {', '.join(known)} show their displays", flush=True)


# The simulator's own entry point, run as ``smartvend simulate`` so its help says so.
SIMULATOR = (
    "import sys; sys.argv[0] = 'smartvend simulate'; "
    "from device.simulate import main; sys.exit(main())"
)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Provision simulated machines (unless --credentials is given) and run them.

    The fleet simulator is a device program: it runs in its own process.
    """
    rest = list(args.rest)
    if "-h" in rest or "--help" in rest:  # help only: nothing registered, nothing written
        print(
            "smartvend simulate [--machines N] [options below]: without --credentials, first "
            "registers N machines sim-1..sim-N (default 3) and writes their keys to "
            "var/sim-machines.json, then runs them.\n",
            flush=True,
        )
        rest = ["--help"]
    elif "--credentials" in rest:
        _mark_simulated(Path(rest[rest.index("--credentials") + 1]))
    else:
        count = 3
        if "--machines" in rest:
            count = int(rest[rest.index("--machines") + 1])
        settings = _settings().with_dev_secret()
        path = settings.var_dir / "sim-machines.json"
        asyncio.run(provision(settings, count, "sim", path))
        rest += ["--credentials", str(path)]
        if "--mqtt-url" not in rest:
            rest += ["--mqtt-url", mqtt_url_for_devices(settings)]
        print(f"{count} simulated machines sim-1..sim-{count} (keys in {path})", flush=True)
    argv = [sys.executable, "-c", SIMULATOR, *rest]
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter and module
    return 0  # pragma: no cover


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="smartvend",
        description="SmartVend: serve the platform, migrate its database, and manage machines, "
        "admins and integrators. Settings come from SMARTVEND_* environment variables.",
        epilog="Run `smartvend COMMAND --help` for a command's options.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the API, pages and (unless MQTT_URL) the broker")
    s.add_argument("--host", help="HTTP address to listen on (default SMARTVEND_HTTP_HOST)")
    s.add_argument("--port", type=int, help="HTTP port (default SMARTVEND_HTTP_PORT, 8002)")
    s.add_argument(
        "--workers",
        type=int,
        help="worker processes (default SMARTVEND_WORKERS or 1); more than one needs "
        "PostgreSQL and an external MQTT broker",
    )
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser(
        "mosquitto-config", help="write Mosquitto passwd, acl and conf files from the database"
    )
    s.add_argument("--out", default="var/mosquitto", help="folder for the files (var/mosquitto)")
    s.add_argument("--host", help="machines' listener address (default SMARTVEND_MQTT_HOST)")
    s.add_argument("--port", type=int, help="machines' listener port (default SMARTVEND_MQTT_PORT)")
    s.add_argument(
        "--server-port",
        type=int,
        help="also a listener for the server's workers (each with its own client id); "
        "needed by serve --workers N",
    )
    s.add_argument(
        "--server-host", default="127.0.0.1", help="address of the workers' listener (127.0.0.1)"
    )
    s.add_argument("--tls-port", type=int, help="also a TLS listener for machines (e.g. 8883)")
    s.add_argument("--tls-host", help="address of the TLS listener (default: --host)")
    s.add_argument("--tls-cert", help="certificate chain (PEM) of the TLS listener")
    s.add_argument("--tls-key", help="private key (PEM) of the TLS listener")
    s.set_defaults(func=cmd_mosquitto_config)

    integrator = sub.add_parser("integrator", help="read-only MQTT accounts").add_subparsers(
        dest="action", required=True
    )
    s = integrator.add_parser("add", help="create an account; prints its password once")
    s.add_argument("username", help="the account's MQTT username")
    s.add_argument("--description", help="who uses it, for the list")
    s.add_argument(
        "--home-assistant",
        action="store_true",
        help="an account for Home Assistant: reads HA_DISCOVERY_PREFIX/# and state, "
        "publishes only its own birth on HA_DISCOVERY_PREFIX/status",
    )
    s.set_defaults(func=cmd_integrator_add)
    s = integrator.add_parser("revoke", help="revoke an account")
    s.add_argument("username", help="the account to revoke")
    s.set_defaults(func=cmd_integrator_revoke)
    s = integrator.add_parser("list", help="list the accounts, active and revoked")
    s.set_defaults(func=cmd_integrator_list)

    s = sub.add_parser("migrate", help="bring the database schema up to date")
    s.add_argument("--revision", default="head", help="target revision (default: the newest)")
    s.set_defaults(func=cmd_migrate)

    machine = sub.add_parser("machine", help="manage machines").add_subparsers(
        dest="action", required=True
    )
    s = machine.add_parser("add", help="register a machine; prints its API key once")
    s.add_argument("machine_id", help="the machine's id, as in its config ([A-Za-z0-9_-], ≤ 32)")
    s.add_argument("--name", help="what shoppers and operators read (default: the id)")
    s.add_argument(
        "--price",
        type=machine_price,
        required=True,
        help="unit price: rupees with a dot or ₹ (25.00, ₹25), or paise as a whole number (2500)",
    )
    s.add_argument("--stock", type=int, default=0, help="units in the machine now (0)")
    s.add_argument("--capacity", type=int, help="units it holds when full (default: --stock)")
    s.add_argument("--location", help="where it stands, for operators' lists")
    s.set_defaults(func=cmd_machine_add)
    s = machine.add_parser("rotate-key", help="issue a new API key; the old one stops working")
    s.add_argument("machine_id", help="the machine whose key to replace")
    s.set_defaults(func=cmd_machine_rotate_key)
    s = machine.add_parser("remove", help="decommission a machine (refused during a vend)")
    s.add_argument("machine_id", help="the machine to take out of the fleet")
    s.set_defaults(func=cmd_machine_remove)
    s = machine.add_parser("list", help="list machines")
    s.set_defaults(func=cmd_machine_list)

    admin = sub.add_parser("admin", help="manage users and their roles").add_subparsers(
        dest="action", required=True
    )
    roles = ("admin", "operator", "restocker", "viewer")
    s = admin.add_parser("create", help="create a user; password from a prompt or stdin")
    s.add_argument("username", help="the login name")
    s.add_argument("--role", choices=roles, default="admin", help="what they may do")
    s.set_defaults(func=cmd_admin_create)
    s = admin.add_parser("list", help="list users with their roles and locations")
    s.set_defaults(func=cmd_admin_list)
    s = admin.add_parser("disable", help="disable a user; their sessions end at once")
    s.add_argument("username", help="the login name")
    s.add_argument("--enable", action="store_true", help="enable them again instead")
    s.set_defaults(func=cmd_admin_disable)
    s = admin.add_parser("passwd", help="set a new password (prompt or stdin)")
    s.add_argument("username", help="the login name")
    s.set_defaults(func=cmd_admin_passwd)
    s = admin.add_parser("role", help="give a user another role")
    s.add_argument("username", help="the login name")
    s.add_argument("role", choices=roles, help="admin, operator, restocker or viewer")
    s.set_defaults(func=cmd_admin_role)

    s = sub.add_parser("simulate", help="run virtual machines (see --help of device.simulate)")
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_simulate)

    firmware_cli.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None, *, app_factory: AppFactory | None = None) -> int:
    """Run one command; ``app_factory`` builds what ``serve`` serves (``web`` adds pages)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["simulate"]:  # its options belong to the simulator
            return cmd_simulate(argparse.Namespace(rest=argv[1:]))
        args = parser().parse_args(argv)
        args.app_factory = app_factory
        return int(args.func(args))
    except SmartVendError as exc:
        print(f"smartvend: {exc.message}", file=sys.stderr)
        return 2
    except (ValueError, IndexError) as exc:
        print(f"smartvend: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

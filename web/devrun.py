"""``make run``: the server plus a few demo machines, on this computer, in one go.

A server already running on the same database is said plainly and nothing is
started (nor migrated).  Ports are checked next: a port the operator set
(``SMARTVEND_HTTP_PORT``, ``SMARTVEND_MQTT_PORT``) is never moved, and when it is
taken ``make run`` says so and stops; a default one that is taken moves to the
next free port, said plainly (the contract's MQTT port 1883 is often held by a
system Mosquitto, so the line also says how to use that broker instead).  Then
the database is migrated.  Ctrl-C, or SIGTERM to ``make``, to this process or
to any process it started, stops all of them, and a stop someone asked for
ends with status 0.
"""

import argparse
import asyncio
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from api.errors import InvalidCredentials
from api.infra import migrations
from api.server import instance_lock
from api.server.runtime import open_runtime
from api.services.provision import mqtt_url_for_devices, provision
from api.settings import Settings
from web.demo_snacks import provision_snacks

DEMO_MACHINES = 3
GENERATED_LOGIN_FILE = "admin_password"
PR_SET_PDEATHSIG = 1


def port_free(host: str, port: int) -> bool:
    """Could a server listen here now? Probed the way servers bind (with address reuse), so
    connections of a previous run still in TIME_WAIT do not make a free port look taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def next_free(host: str, start: int) -> int:
    for port in range(start, start + 100):
        if port_free(host, port):
            return port
    raise SystemExit(f"no free port on {host} from {start}")


class PortTaken(SystemExit):
    """A port the operator chose is held by another program: said plainly, never moved."""


def _explicit(env: dict[str, str], name: str) -> bool:
    return bool(env.get(f"SMARTVEND_{name}"))


def choose_ports(env: dict[str, str]) -> None:
    """Keep every port the operator set; move only a default one that is taken, and say so."""
    settings = Settings.from_env(env)
    checks = [("HTTP", "HTTP_PORT", settings.http_host, settings.http_port)]
    if not settings.mqtt_url:
        checks.insert(0, ("MQTT", "MQTT_PORT", settings.mqtt_host, settings.mqtt_port))
    for label, name, host, port in checks:
        if port_free(host, port):
            continue
        if _explicit(env, name):
            raise PortTaken(
                f"! {label} port {host}:{port}, set with SMARTVEND_{name}, is taken by another "
                f"program (a running server or broker). Stop it, or set SMARTVEND_{name} to a "
                f"free port; a port you set is never moved."
            )
        moved = next_free(host, port + 1)
        why = (
            " (another MQTT broker, such as Mosquitto, is running; to use it instead set "
            f"SMARTVEND_MQTT_URL=mqtt://user:pass@{host}:{port})"
            if label == "MQTT"
            else ""
        )
        print(
            f"! {label} port {host}:{port} is already in use{why}.\n"
            f"  Using port {moved} instead; choose one with SMARTVEND_{name}=...",
            flush=True,
        )
        env[f"SMARTVEND_{name}"] = str(moved)


@dataclass(frozen=True)
class AdminPassword:
    value: str
    source: str  # where it comes from, as the start-up banner says it
    generated: bool


def admin_password(env: dict[str, str], var_dir: Path) -> AdminPassword:
    """``SMARTVEND_ADMIN_PASSWORD`` (or ``ADMIN_PASSWORD``), else one generated once into var/."""
    for name in ("SMARTVEND_ADMIN_PASSWORD", "ADMIN_PASSWORD"):
        if env.get(name):
            return AdminPassword(env[name], f"from {name}", generated=False)
    path = var_dir / GENERATED_LOGIN_FILE
    first = not path.exists()
    if first:
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    when = "generated now" if first else "generated at the first start"
    return AdminPassword(path.read_text().strip(), f"{when}, kept in {path}", generated=True)


async def prepare(settings: Settings, count: int, credentials: Path, admin: AdminPassword) -> bool:
    """Demo machines and the admin user; False when ``admin`` existed with another password."""
    if count:
        await provision(settings, count, "demo", credentials)
        await provision_snacks(settings, credentials)
    if not admin.generated:
        return True  # the server creates it from the environment variable
    async with open_runtime(settings) as rt:
        if await rt.services.admins.ensure("admin", admin.value):
            return True
        try:
            await rt.services.admins.authenticate("admin", admin.value)
        except InvalidCredentials:
            return False
        return True


def wait_healthy(url: str, server: subprocess.Popen[bytes], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (exit {server.returncode}); see its log above")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not come up within a minute")


class Stop(Exception):
    """A signal asked ``make run`` to stop."""


def on_signal(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def die_with_parent() -> None:
    """Get SIGTERM when the parent (``make``) goes away, so nothing is left running."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent was already gone
        os.kill(os.getpid(), signal.SIGTERM)


def wait_any(children: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """Block until one child ends (without reaping it) and return it."""
    while True:
        ended = next((c for c in children if c.poll() is not None), None)
        if ended is not None:
            return ended
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)


def stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    """Stop the simulator, then the server (the first child), each cleanly.

    The server shuts down gracefully on SIGINT. The simulator may still be starting
    its interpreter, where SIGINT prints a KeyboardInterrupt traceback; SIGTERM ends
    it quietly at any moment (its machines' wills say they are gone).
    """
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGINT if child is children[0] else signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


ASKED_TO_STOP = {0, -signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP}


def report_end(name: str, ended: subprocess.Popen[bytes]) -> int:
    """One process ended before ``make run`` was told to stop: say why, in words.

    Exit 0 or a stop signal means someone asked it to stop (Ctrl-C, ``kill``): that is an
    ordinary stop, and ``make run`` ends with 0 too. Anything else is a failure.
    """
    code = ended.returncode
    if code in ASKED_TO_STOP:
        print(f"\n{name} stopped when asked to; stopping SmartVend.", flush=True)
        return 0
    print(f"\n{name} failed (exit code {code}); see the log above. Stopping SmartVend.")
    return 1


def demo_jam_rate(env: dict[str, str]) -> float:
    """``SMARTVEND_DEMO_JAM_RATE``: the chance that a demo machine's unit jams (0 to 1)."""
    text = env.get("SMARTVEND_DEMO_JAM_RATE", "0") or "0"
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise SystemExit(f"! SMARTVEND_DEMO_JAM_RATE must be a number from 0 to 1, not {text!r}")
    return rate


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="make run",
        description="Start SmartVend on this computer: the server (API, pages, embedded MQTT "
        "broker) and simulated demo machines. Ctrl-C, or SIGTERM to any of its processes, "
        "stops all of them.",
        epilog="Environment: SMARTVEND_HTTP_PORT, SMARTVEND_MQTT_PORT, SMARTVEND_MQTT_URL, "
        "SMARTVEND_ADMIN_PASSWORD, SMARTVEND_DEMO_MACHINES (default 3), SMARTVEND_VAR_DIR, "
        "SMARTVEND_DEMO_JAM_RATE (0 to 1: how often a demo machine jams; default 0).",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parse(argv)  # --help ends here, before anything is touched
    env = dict(os.environ)
    running = instance_lock.holder(Settings.from_env(env))
    if running is not None:
        print(f"! {instance_lock.refusal(Settings.from_env(env), running).message}", flush=True)
        return 1
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    die_with_parent()
    choose_ports(env)
    migrations.upgrade(Settings.from_env(env))  # only once no other server holds the database
    settings = Settings.from_env(env).with_dev_secret()
    admin = admin_password(env, settings.var_dir)
    count = int(env.get("SMARTVEND_DEMO_MACHINES", DEMO_MACHINES))
    jam_rate = demo_jam_rate(env)
    credentials = settings.var_dir / "demo-machines.json"
    admin_usable = asyncio.run(prepare(settings, count, credentials, admin))
    settings = Settings.from_env(env)
    base = f"http://{settings.http_host}:{settings.http_port}"
    children: list[subprocess.Popen[bytes]] = []
    try:
        server = subprocess.Popen([sys.executable, "-m", "web.cli", "serve"], env=env)
        children.append(server)
        wait_healthy(base, server)
        if count:
            children.append(
                subprocess.Popen(  # noqa: S603
                    [
                        sys.executable,
                        "-m",
                        "device.simulate",
                        "--credentials",
                        str(credentials),
                        "--mqtt-url",
                        mqtt_url_for_devices(settings),
                        "--flash-dir",
                        str(settings.var_dir / "demo-flash"),
                        "--jam-rate",
                        str(jam_rate),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            )
        gateway = "Razorpay" if settings.payments_live else "the built-in TEST payment gateway"
        login = (
            f"user admin, password {admin.value} ({admin.source})"
            if admin_usable
            else "user admin: its password was set before, with SMARTVEND_ADMIN_PASSWORD or "
            "`smartvend admin create`"
        )
        print(
            f"\nSmartVend is running.\n"
            f"  Shop:       {base}/   (demo machines: demo-1 .. demo-{count}, and "
            f"{base}/m/snacks-1 with six products)\n"
            f"  Dashboard:  {base}/admin   ({login})\n"
            f"  MQTT:       {mqtt_url_for_devices(settings)}\n"
            f"  Payments:   {gateway}\n"
            f"To see a jam and its refund, start with SMARTVEND_DEMO_JAM_RATE=0.5 "
            f"(each unit then jams with that chance).\n"
            f"Press Ctrl-C to stop.\n",
            flush=True,
        )
        ended = wait_any(children)
        return report_end("the server" if ended is server else "the simulated machines", ended)
    except (KeyboardInterrupt, Stop):
        print("\nStopping SmartVend.", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the cleanup
        stop_all(children)


if __name__ == "__main__":
    sys.exit(main())

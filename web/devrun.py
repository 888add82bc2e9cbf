"""``make run``: the server plus a few demo machines, on this computer, in one go.

Ports are checked first and a taken one is said plainly: the contract's MQTT
port 1883 is often held by a system Mosquitto, so the embedded broker moves to
a free port and says how to choose one (or how to use that broker instead).
"""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from api.provision import mqtt_url_for_devices, provision
from api.settings import Settings

DEMO_MACHINES = 3


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
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


def choose_ports(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    if not settings.mqtt_url and not port_free(settings.mqtt_host, settings.mqtt_port):
        port = next_free(settings.mqtt_host, settings.mqtt_port + 1)
        print(
            f"! MQTT port {settings.mqtt_host}:{settings.mqtt_port} is already in use "
            f"(another MQTT broker, such as Mosquitto, is running).\n"
            f"  The embedded broker will listen on port {port} instead.\n"
            f"  Choose a port with SMARTVEND_MQTT_PORT=..., or use that broker with "
            f"SMARTVEND_MQTT_URL=mqtt://user:pass@{settings.mqtt_host}:{settings.mqtt_port}.",
            flush=True,
        )
        env["SMARTVEND_MQTT_PORT"] = str(port)
    if not port_free(settings.http_host, settings.http_port):
        port = next_free(settings.http_host, settings.http_port + 1)
        print(
            f"! HTTP port {settings.http_port} is in use; serving on {port} instead "
            f"(set SMARTVEND_HTTP_PORT to choose).",
            flush=True,
        )
        env["SMARTVEND_HTTP_PORT"] = str(port)


def admin_password(env: dict[str, str], var_dir: Path) -> str:
    if env.get("SMARTVEND_ADMIN_PASSWORD") or env.get("ADMIN_PASSWORD"):
        return env.get("SMARTVEND_ADMIN_PASSWORD") or env["ADMIN_PASSWORD"]
    path = var_dir / "admin_password"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    password = path.read_text().strip()
    env["SMARTVEND_ADMIN_PASSWORD"] = password
    return password


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


def main() -> int:
    env = dict(os.environ)
    choose_ports(env)
    settings = Settings.from_env(env).with_dev_secret()
    password = admin_password(env, settings.var_dir)
    count = int(env.get("SMARTVEND_DEMO_MACHINES", DEMO_MACHINES))
    credentials = settings.var_dir / "demo-machines.json"
    if count:
        asyncio.run(provision(settings, count, "demo", credentials))
    settings = Settings.from_env(env)
    base = f"http://{settings.http_host}:{settings.http_port}"
    server = subprocess.Popen([sys.executable, "-m", "web.cli", "serve"], env=env)
    children = [server]
    try:
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
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            )
        gateway = "Razorpay" if settings.payments_live else "the built-in TEST payment gateway"
        print(
            f"\nSmartVend is running.\n"
            f"  Shop:       {base}/   (demo machines: demo-1 .. demo-{count})\n"
            f"  Dashboard:  {base}/admin   (user admin, password {password})\n"
            f"  MQTT:       {mqtt_url_for_devices(settings)}\n"
            f"  Payments:   {gateway}\n"
            f"Press Ctrl-C to stop.\n",
            flush=True,
        )
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())

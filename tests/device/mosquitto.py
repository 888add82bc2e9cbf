"""A throwaway Mosquitto on a free loopback port, anonymous clients allowed."""

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.ports import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """Run ``mosquitto -c conf`` in ``workdir``; yields its port."""
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "set_tcp_nodelay true\n"
        "max_keepalive 60\n"
        "log_dest stderr\n"
        "log_type error\n"
        "log_type warning\n"
    )
    log = (workdir / "mosquitto.log").open("wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while not _accepting(port):  # no readiness event to await: poll with a deadline
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "mosquitto did not start: " + (workdir / "mosquitto.log").read_text()
                )
            time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

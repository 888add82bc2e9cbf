"""``make run`` (``python -m web.devrun``) as a subprocess: it stops everything it started on
Ctrl-C or SIGTERM to any of its processes, refuses a second server on the same database,
says where the admin password comes from, and ``--help`` anywhere changes nothing."""

import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.settings import ALIASES
from tests.support.ports import free_port
from web.devrun import port_free

SMARTVEND = Path(sys.executable).parent / "smartvend"
READY = "Press Ctrl-C to stop."
START_S = 60


def clean_env(workdir: Path) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SMARTVEND_") and k not in ALIASES and k != "DISPLAY_CODE_TTL_MINUTES"
    }
    return {
        **inherited,
        "SMARTVEND_DATABASE_URL": f"sqlite:///{workdir / 'var' / 'smartvend.db'}",
        "SMARTVEND_VAR_DIR": str(workdir / "var"),
        "SMARTVEND_HTTP_PORT": str(free_port()),
        "SMARTVEND_MQTT_PORT": str(free_port()),
        "SMARTVEND_DEMO_MACHINES": "1",
        "PYTHONUNBUFFERED": "1",
    }


class DevRun:
    """One ``make run``, its output collected line by line."""

    def __init__(
        self, workdir: Path, env: dict[str, str], command: list[str] | None = None
    ) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "web.devrun"],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY in line:
                self.ready.set()
        self.ready.set()  # ended: whoever waits stops waiting

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self) -> None:
        assert self.ready.wait(START_S) and READY in self.output, self.output

    def children(self, of: int | None = None) -> list[int]:
        """Processes this run (or ``of``) started: their parent is its pid."""
        parent = self.process.pid if of is None else of
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(stat.parent.name))
        return sorted(found)

    def finish(self) -> int:
        code = self.process.wait(timeout=30)
        self.reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    env = clean_env(tmp_path)
    migrated = subprocess.run(
        [str(SMARTVEND), "migrate"], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    yield tmp_path


@pytest.mark.parametrize("victim", ["simulator", "make run", "server"])
def test_sigterm_to_any_process_stops_everything(workdir: Path, victim: str) -> None:
    env = clean_env(workdir)
    run = DevRun(workdir, env)
    run.wait_ready()
    children = run.children()
    assert len(children) == 2, (children, run.output)  # the server and the simulator
    server_pid = int(
        re.findall(r"pid (\d+)", (workdir / "var" / "smartvend.db.lock").read_text())[0]
    )
    assert server_pid in children
    simulator_pid = next(pid for pid in children if pid != server_pid)
    target = {"simulator": simulator_pid, "make run": run.process.pid, "server": server_pid}
    os.kill(target[victim], signal.SIGTERM)
    assert run.finish() == 0, run.output  # a stop someone asked for is not a failure
    assert not any(alive(pid) for pid in children), run.output
    assert run.children() == []
    assert "exit" not in run.output.split(READY, 1)[1], run.output
    if victim != "make run":
        assert "stopped when asked to; stopping SmartVend." in run.output


def test_sigterm_to_make_stops_everything(workdir: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    run = DevRun(workdir, clean_env(workdir), ["make", "-s", "-C", str(root), "run"])
    run.wait_ready()
    [devrun] = run.children()
    started = run.children(of=devrun)
    assert len(started) == 2, run.output
    # Not our children: a pidfd becomes readable when each process ends.
    pidfds = [os.pidfd_open(pid) for pid in (devrun, *started)]
    try:
        os.kill(run.process.pid, signal.SIGTERM)  # make itself
        run.finish()
        waiting = list(pidfds)
        while waiting:
            ended, _, _ = select.select(waiting, [], [], START_S)
            assert ended, f"still running: {[p for p in (devrun, *started) if alive(p)]}"
            waiting = [fd for fd in waiting if fd not in ended]
    finally:
        for fd in pidfds:
            os.close(fd)


def test_a_second_server_on_the_same_database_refuses_clearly(workdir: Path) -> None:
    env = clean_env(workdir)
    first = DevRun(workdir, env)
    first.wait_ready()
    assert re.search(
        r"user admin, password \S+ \(generated now, kept in .*admin_password\)", first.output
    ), first.output
    again = {**env, "SMARTVEND_HTTP_PORT": str(free_port())}
    second = DevRun(workdir, again)
    assert second.finish() == 1
    assert "another SmartVend server (pid " in second.output
    assert "is already running on the database" in second.output
    assert second.children() == [] and READY not in second.output
    # The server itself refuses too, whoever starts it.
    served = subprocess.run(
        [str(SMARTVEND), "serve"], env=again, cwd=workdir, capture_output=True, timeout=60
    )
    assert served.returncode == 2
    assert b"another SmartVend server" in served.stderr
    first.process.send_signal(signal.SIGINT)  # Ctrl-C
    first.finish()
    # A normal restart: the same generated password, said so, and no alarming noise.
    third = DevRun(workdir, env)
    third.wait_ready()
    assert "generated at the first start, kept in" in third.output
    os.kill(third.process.pid, signal.SIGTERM)
    third.finish()
    log = first.output + third.output
    assert "from ADMIN_PASSWORD" not in log
    assert "pending publish calls" not in log and "unknown order" not in log
    assert "Traceback" not in log and " ERROR " not in log


def test_help_changes_nothing(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    commands = [
        [str(SMARTVEND), "--help"],
        [str(SMARTVEND), "serve", "--help"],
        [str(SMARTVEND), "migrate", "--help"],
        [str(SMARTVEND), "machine", "add", "--help"],
        [str(SMARTVEND), "simulate", "--help"],
        [str(SMARTVEND), "simulate", "--machines", "2", "-h"],
        [sys.executable, "-m", "web.devrun", "--help"],
    ]
    for command in commands:
        done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)
        assert b"usage:" in done.stdout, command
        assert list(tmp_path.iterdir()) == [], f"{command} left {list(tmp_path.iterdir())}"


def test_a_port_set_by_the_operator_is_never_moved(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env["SMARTVEND_HTTP_PORT"] = str(port)
        run = DevRun(tmp_path, env)
        assert run.finish() != 0
    assert f"HTTP port 127.0.0.1:{port}, set with SMARTVEND_HTTP_PORT, is taken" in run.output
    assert "never moved" in run.output and READY not in run.output
    assert run.children() == []
    assert not (tmp_path / "var" / "smartvend.db").exists()  # refused before touching it


def test_a_previous_runs_closed_connections_leave_its_port_free() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        peer = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server closes first: its side waits in TIME_WAIT
        peer.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # a probe without address reuse calls it busy
    assert port_free("127.0.0.1", port)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert not port_free("127.0.0.1", port)


def test_a_fresh_database_is_migrated_by_make_run_itself(tmp_path: Path) -> None:
    refused = DevRun(tmp_path, {**clean_env(tmp_path), "SMARTVEND_DEMO_JAM_RATE": "lots"})
    assert refused.finish() != 0 and "SMARTVEND_DEMO_JAM_RATE must be a number" in refused.output
    run = DevRun(tmp_path, {**clean_env(tmp_path), "SMARTVEND_DEMO_JAM_RATE": "0.5"})
    run.wait_ready()
    assert "SMARTVEND_DEMO_JAM_RATE=0.5" in run.output  # the banner says how to see a jam
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in run.children()]
    simulator = next(c for c in commands if b"device.simulate" in c)
    assert simulator[simulator.index(b"--jam-rate") + 1] == b"0.5"
    os.kill(run.process.pid, signal.SIGINT)
    assert run.finish() == 0
    assert "Stopping SmartVend." in run.output and "Traceback" not in run.output

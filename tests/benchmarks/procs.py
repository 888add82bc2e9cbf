"""Processes the benchmarks start: load workers, the embedded broker alone, Mosquitto."""

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from broker import mosquitto
from tests.support.brokers import mosquitto_binary
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


class Worker:
    """A ``tests.benchmarks.worker`` process: JSON events out, commands in, EOF stops it."""

    def __init__(self, role: str, config: dict[str, Any], workdir: Path) -> None:
        self.role = role
        self._config_path = Path(
            tempfile.mkstemp(prefix=f"{role}-", suffix=".json", dir=workdir)[1]
        )
        self._config_path.write_text(json.dumps(config))
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.benchmarks.worker",
            self.role,
            str(self._config_path),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 26,  # the shoppers' result line carries every latency
        )

    async def expect(self, event: str, within: float = 300.0) -> dict[str, Any]:
        """Wait for the next ``event`` line; fails if the worker exits first."""
        assert self.proc is not None and self.proc.stdout is not None
        async with asyncio.timeout(within):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    code = await self.proc.wait()
                    raise RuntimeError(f"{self.role} worker exited ({code}) before {event!r}")
                found: dict[str, Any] = json.loads(line)
                if found.get("event") == event:
                    return found

    def send(self, command: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")

    async def stop(self, within: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), within)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        self._config_path.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def workers(
    role: str, configs: Iterable[dict[str, Any]], workdir: Path
) -> AsyncIterator[list[Worker]]:
    started = [Worker(role, config, workdir) for config in configs]
    try:
        for worker in started:
            await worker.start()
        yield started
    finally:
        await asyncio.gather(*(w.stop() for w in started))


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_listening(
    proc: asyncio.subprocess.Process, host: str, port: int, within: float = START_TIMEOUT
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await _port_open(host, port):
        if proc.returncode is not None:
            raise RuntimeError(f"process {proc.pid} exited ({proc.returncode}) before listening")
        if loop.time() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port}")
        await asyncio.sleep(0.05)


class MosquittoRun:
    """A mosquitto process started from a configuration file."""

    def __init__(
        self, conf: Path, host: str, port: int, log: Path, start_timeout: float = START_TIMEOUT
    ) -> None:
        self.conf, self.host, self.port, self.log = conf, host, port, log
        self.start_timeout = start_timeout
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                mosquitto_binary(),
                "-c",
                str(self.conf),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        await wait_listening(self.proc, self.host, self.port, self.start_timeout)

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def config_dir(prefix: str) -> Path:
    """A temporary directory Mosquitto (which drops root for its own user) can read."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@contextlib.asynccontextmanager
async def bench_mosquitto(accounts: list[mosquitto.Account]) -> AsyncIterator[MosquittoRun]:
    """Mosquitto with the files ``broker.mosquitto`` generates, default logging."""
    directory = config_dir("smartvend-bench-mosquitto-")
    try:
        for name, text in (
            ("passwd", mosquitto.password_file(accounts)),
            ("acl", mosquitto.acl_file(accounts)),
        ):
            (directory / name).write_text(text)
            (directory / name).chmod(0o644)
        port = free_port()
        conf = directory / "mosquitto.conf"
        conf.write_text(
            mosquitto.mosquitto_conf(
                port=port,
                host="127.0.0.1",
                password_file=str(directory / "passwd"),
                acl_file=str(directory / "acl"),
                persistence_dir=None,
            )
        )
        conf.chmod(0o644)
        run = MosquittoRun(conf, "127.0.0.1", port, directory / "mosquitto.log")
        await run.start()
        try:
            yield run
        finally:
            await run.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def embedded_broker_process(
    accounts: list[mosquitto.Account], workdir: Path
) -> AsyncIterator[tuple[Worker, int]]:
    """The embedded broker alone in a worker process; yields it and its port."""
    accounts_file = workdir / "broker-accounts.json"
    accounts_file.write_text(json.dumps(accounts))
    async with workers(
        "broker", [{"accounts": str(accounts_file), "port": free_port()}], workdir
    ) as (worker,):
        ready = await worker.expect("ready", START_TIMEOUT)
        yield worker, int(ready["port"])

"""``smartvend serve --workers N`` as a subprocess, watched through its JSON log lines.

Every worker logs JSON (``LOG_FORMAT=json``) with its ``pid``; the watcher
keeps the lines, knows which pids serve, which one leads, and lets a test
await a log line instead of sleeping.
"""

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from api.settings import ALIASES
from tests.support.ports import free_port

SMARTVEND = Path(sys.executable).parent / "smartvend"
LEADER = "this worker is now the leader"
CONNECTED = "connected to the MQTT broker"
REPUBLISHED = "republished"
FEED_PUBLISHED = "published"  # the daily figures, after the republish: then /readyz says ready
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


class Workers:
    """The supervisor process and what its workers said."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._changed = asyncio.Condition()

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in lines(self.process.stderr):
            text = raw.decode(errors="replace").rstrip("\n")
            self.raw.append(text)
            with contextlib.suppress(ValueError):
                line = json.loads(text)
                if isinstance(line, dict):
                    self.lines.append(line)
            async with self._changed:
                self._changed.notify_all()

    def said(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if str(line.get("message", "")).startswith(message)]

    async def wait(self, check: Callable[[], Any], what: str, within: float = 30.0) -> Any:
        """Wait until ``check()`` is true after some log line; fails with the log tail."""
        try:
            async with asyncio.timeout(within), self._changed:
                while not (found := check()):
                    if self.process.returncode is not None:
                        raise AssertionError("the server exited")
                    await self._changed.wait()
                return found
        except (TimeoutError, AssertionError) as exc:
            tail = "\n".join(self.raw[-40:])
            raise AssertionError(f"waiting for {what}: {exc!r}\n{tail}") from exc

    def pids(self, message: str) -> set[int]:
        return {int(line["pid"]) for line in self.said(message)}

    def leader(self) -> int | None:
        """The pid that most recently logged that it became the leader."""
        found = self.said(LEADER)
        return int(found[-1]["pid"]) if found else None

    def alive(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)


async def lines(stream: asyncio.StreamReader, keep: int = 4096) -> AsyncIterator[bytes]:
    """Every line of ``stream``. A line longer than the reader's buffer comes out cut to
    its first ``keep`` bytes, so that a huge log line never stops the reading, which
    would leave the writers blocked on a full pipe."""
    head, cut = b"", False
    while True:
        try:
            chunk = await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as end:
            if head or end.partial:
                yield head + end.partial
            return
        except asyncio.LimitOverrunError as long:
            head = (head + await stream.read(long.consumed))[:keep]
            cut = True
            continue
        if cut:
            yield head + b" [cut]\n"
            head, cut = b"", False
        else:
            yield chunk


def clean_environ(settings: Mapping[str, str]) -> dict[str, str]:
    """The test's environment without SmartVend settings, plus ``settings``."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SMARTVEND_")
        and key not in ALIASES
        and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    return {**inherited, **{f"SMARTVEND_{k.upper()}": v for k, v in settings.items()}}


@contextlib.asynccontextmanager
async def serve_workers(
    count: int,
    settings: Mapping[str, str],
    workdir: Path,
    start_timeout: float = START_TIMEOUT_S,
) -> AsyncIterator[Workers]:
    """``smartvend serve --workers count`` on a free port until every worker is connected."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(SMARTVEND),
        "serve",
        "--workers",
        str(count),
        "--port",
        str(port),
        env=clean_environ({**settings, "log_format": "json"}),
        cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group: see ``stop``
    )
    workers = Workers(process, f"http://127.0.0.1:{port}")
    reader = asyncio.create_task(workers._read())
    try:
        await workers.wait(
            lambda: (
                len(workers.pids(CONNECTED)) >= count
                and workers.leader() is not None
                and workers.said(REPUBLISHED)
                and workers.said(FEED_PUBLISHED)
            ),  # the leader's bridge is ready once it republished and published the feed
            f"{count} workers connected and a leader",
            start_timeout,
        )
        async with httpx.AsyncClient(base_url=workers.url, timeout=10) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200, (ready.text, workers.raw[-15:])
        yield workers
    finally:
        stopped = await stop(process)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    if not stopped:
        tail = "\n".join(workers.raw[-40:])
        raise AssertionError(
            f"the server did not stop {STOP_TIMEOUT_S:.0f} s after SIGTERM\n{tail}"
        )


async def stop(process: asyncio.subprocess.Process) -> bool:
    """SIGTERM the supervisor; whatever of its group is left after ``STOP_TIMEOUT_S`` is
    killed (a worker outliving its supervisor would hold the log pipe open).
    True when it stopped by itself."""
    if process.returncode is not None:
        return True
    process.terminate()
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await process.wait()
        return True
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return False

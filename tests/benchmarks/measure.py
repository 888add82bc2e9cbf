"""Small measuring tools shared by the benchmarks: percentiles, RSS, progress, limits."""

import asyncio
import bisect
import contextlib
import datetime
import gc
import itertools
import os
import platform
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_T0 = time.monotonic()


def say(message: str) -> None:
    """One progress line on stderr, with the time since the run started."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latency:
    """Latencies in milliseconds."""

    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "Latency":
        ms = [s * 1000 for s in seconds]
        return cls(len(ms), percentile(ms, 50), percentile(ms, 99), max(ms, default=float("nan")))


NO_LATENCY = Latency(0, float("nan"), float("nan"), float("nan"))


class LoopLag:
    """How late a short timer on the running event loop wakes, sampled all along: each
    lateness is a stretch in which the loop was held by other work (or the process had
    no core). Costs the loop one wake-up every ``period_s``."""

    def __init__(self, period_s: float = 0.002) -> None:
        self.period_s = period_s
        self.samples: list[tuple[float, float]] = []  # (perf_counter at the wake-up, late by)
        self._task: asyncio.Task[None] | None = None
        self._woke = asyncio.Event()

    async def _run(self) -> None:
        while True:
            due = time.perf_counter() + self.period_s
            await asyncio.sleep(self.period_s)
            now = time.perf_counter()
            self.samples.append((now, max(0.0, now - due)))
            self._woke.set()

    async def woken(self) -> float:
        """Wait for the timer's next wake-up; when it was (perf_counter)."""
        self._woke.clear()
        await self._woke.wait()
        return self.samples[-1][0]

    async def __aenter__(self) -> "LoopLag":
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def lateness(self) -> Latency:
        return Latency.of([late for _, late in self.samples])

    def longest(self, start: float, end: float) -> float:
        """The longest stretch (seconds) the loop was held that ended between ``start``
        and ``end`` (perf_counter)."""
        at = bisect.bisect_left(self.samples, (start, 0.0))
        longest = 0.0
        for woke, late in itertools.islice(self.samples, at, None):
            if woke > end:
                break
            longest = max(longest, late)
        return longest


class GcPauses:
    """Python's garbage collections in this process while the block runs: how many of
    each generation and how long each took (every thread stops for one)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._began = 0.0

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._began))

    def __enter__(self) -> "GcPauses":
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._note)

    def oldest(self) -> tuple[int, float]:
        """Collections of the oldest generation, and the longest of them (seconds)."""
        full = [seconds for generation, seconds in self.pauses if generation == 2]
        return len(full), max(full, default=0.0)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def raise_open_files_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        info = platform.freedesktop_os_release()
        return f"{info.get('PRETTY_NAME', 'Linux')}, kernel {platform.release()}"
    except OSError:
        return f"{platform.system()} {platform.release()}"


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3]) + " (1 / 5 / 15 min)"
    except OSError:
        return "unknown"


def machine_info() -> dict[str, str]:
    return {
        "CPU": _cpu_model(),
        "Cores": str(os.cpu_count() or "unknown"),
        "RAM": _ram(),
        "Python": platform.python_version(),
        "OS": _os_name(),
        "Load average at the start": load_average(),
        "Date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _processes(*, reaped: bool = False) -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds so far, command line) for every process.

    With ``reaped``, a process's CPU includes its children that have exited and been
    reaped (PostgreSQL's backends, a supervisor's workers), so a process tree's sum
    never goes back when one of its processes ends between two readings. Without it,
    each process's own: per-process deltas would count a reaped child twice."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[int, float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        found[int(entry.name)] = (
            int(fields[1]),
            sum(int(f) for f in fields[11 : 15 if reaped else 13]) / ticks,
            command,
        )
    return found


def descendants(procs: dict[int, tuple[int, float, str]], roots: set[int]) -> set[int]:
    """``roots`` and every process below them in ``procs``."""
    ours, changed = set(roots), True
    while changed:
        changed = False
        for pid, (parent, _, _) in procs.items():
            if parent in ours and pid not in ours:
                ours.add(pid)
                changed = True
    return ours


def tree_cpu(*roots: int) -> float:
    """CPU seconds so far of ``roots`` and everything below them, reaped children
    included (from /proc)."""
    procs = _processes(reaped=True)
    return sum(procs[pid][1] for pid in descendants(procs, set(roots)) if pid in procs)


class HostBusy:
    """The share of the host's cores that were busy (not idle, not waiting for I/O)
    while the block ran, every process included, from /proc/stat."""

    def __init__(self) -> None:
        self.share = float("nan")
        self._start: tuple[int, int] = (0, 0)

    @staticmethod
    def _read() -> tuple[int, int]:
        """(busy, total) jiffies of all cores so far."""
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        total = sum(fields[:8])  # guest time is already in user and nice
        return total - fields[3] - fields[4], total

    def __enter__(self) -> "HostBusy":
        self._start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = self._read()
        spent = total - self._start[1]
        self.share = (busy - self._start[0]) / spent if spent else float("nan")


class ForeignLoad:
    """CPU used by processes that are not the benchmark's, sampled every second.

    The benchmark's processes are this one's descendants and those of anything whose
    command line names a ``smartvend-`` temporary directory (PostgreSQL detaches).
    Processes that live less than a second between samples are partly missed.
    """

    def __init__(self) -> None:
        self.seconds = 0.0  # foreign CPU seconds so far
        self._last: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        procs = _processes()
        marked = {pid for pid, (_, _, cmd) in procs.items() if "smartvend-" in cmd}
        ours = descendants(procs, marked | {os.getpid()})
        current = {pid: cpu for pid, (_, cpu, _) in procs.items() if pid not in ours}
        if self._last:
            self.seconds += sum(cpu - self._last.get(pid, 0.0) for pid, cpu in current.items())
        self._last = current

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@contextlib.asynccontextmanager
async def flame_graph(pid: int, out: Path, *, subprocesses: bool = False) -> AsyncIterator[None]:
    """py-spy records ``pid`` (and its children with ``subprocesses``) while the block
    runs, 100 samples a second of whichever thread holds the interpreter, and writes the
    flame graph ``out``. py-spy needs ptrace (run as root); sampling costs the recorded
    process some CPU, so a profiled run's figures are a little lower."""
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(pid),
        *(["--subprocesses"] if subprocesses else []),
        "--gil",  # samples of threads holding the GIL: where the CPU goes
        "--rate",
        "100",
        "--output",
        str(out),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert spy.stdout is not None
    said = b""
    async with asyncio.timeout(30):  # it says so once it has attached and samples
        while b"Sampling process" not in said:
            if spy.stdout.at_eof():
                raise RuntimeError(f"py-spy exited before sampling (it needs ptrace): {said!r}")
            said += await spy.stdout.read(256)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        await spy.wait()
        say(f"flame graph in {out}")

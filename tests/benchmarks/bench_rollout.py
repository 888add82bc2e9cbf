"""Firmware rollouts over a whole fleet, on both stacks.

Every machine runs the update protocol of ``tests.firmware.fleet`` (MQTT commands,
HTTP downloads of the manifest and each file in two byte ranges, a reconnect with
the new ``fw``). First a release that 2 % of the machines fail, rolled out in waves
``[1, 10, 50, 100]`` with a 1 % threshold: the time until it pauses. Then, after an
abort, a release nobody fails: the time until every machine runs it.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx
from sqlalchemy import func, select

from api.firmware import cli as fw_cli
from api.services.firmware import Upload
from schema.models import Machine as MachineRow
from tests.benchmarks.measure import say
from tests.benchmarks.report import Section, Table
from tests.benchmarks.stacks import STACKS, BenchStack
from tests.firmware import support
from tests.firmware.fleet import Machine, UpdateFleet

WAVES = [1, 10, 50, 100]
FILES = {"boot.py": 1500, "main.py": 9000, "lib/vend.mpy": 60_000}
FAIL_EVERY = 50  # one machine in 50 fails the first release: 2 %
TIMEOUT_S = 1800.0


@dataclass
class RolloutResult:
    label: str
    machines: int
    online_s: float = float("nan")
    paused_s: float = float("nan")
    paused_wave: int = 0
    failed: int = 0
    finished_s: float = float("nan")
    succeeded: int = 0
    downloaded_mib: float = 0.0
    errors: list[str] = field(default_factory=list)


def _reader(handle: BinaryIO) -> Callable[[int], Awaitable[bytes]]:
    async def read(n: int) -> bytes:
        return handle.read(n)

    return read


async def _store(bench: BenchStack, folder: Path, public_key: str) -> None:
    data, signature, files = fw_cli.read_release(folder)
    handles = [path.open("rb") for _, path in files]
    try:
        uploads = [Upload(rel, _reader(h)) for (rel, _), h in zip(files, handles, strict=True)]
        await bench.services.firmware.add(data, signature, uploads, (public_key,))
    finally:
        for handle in handles:
            handle.close()


async def _online(bench: BenchStack) -> int:
    async with bench.services.ctx.db() as s:
        found = await s.scalar(select(func.count()).where(MachineRow.online.is_(True)))
        return int(found or 0)


async def _all_online(bench: BenchStack) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            if await _online(bench) >= bench.machines:
                return
            await asyncio.sleep(0.5)


async def _until_stopped(bench: BenchStack, rollout_id: str) -> dict[str, object]:
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            view = await bench.services.rollouts.view(rollout_id)
            if view["status"] != "running":
                return view
            await asyncio.sleep(0.5)


async def _one(bench: BenchStack, workdir: Path) -> RolloutResult:
    result = RolloutResult(bench.label, bench.machines)
    signer = support.signer(workdir, "bench-release.key")
    bad = support.release_dir(workdir, "2.0.0", FILES, signer)
    good = support.release_dir(workdir, "2.1.0", FILES, signer)
    for folder in (bad, good):
        await _store(bench, folder, signer.public_key)
    keys = {
        m["machine_id"]: m["api_key"] for m in json.loads(bench.credentials.read_text())["machines"]
    }
    ordered = sorted(keys)
    machines = [
        Machine(mid, keys[mid], fail_versions={"2.0.0"} if i % FAIL_EVERY == 25 else set())
        for i, mid in enumerate(ordered)
    ]
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=bench.stack.url, timeout=120, limits=limits) as http:
        fleet = UpdateFleet(machines, bench.mqtt_port, http, signer.public_key)
        started = time.monotonic()
        async with fleet.running():
            await fleet.wait_online(TIMEOUT_S)
            await _all_online(bench)
            result.online_s = time.monotonic() - started
            say(f"rollout [{bench.label}]: {bench.machines} machines online")

            started = time.monotonic()
            first = await bench.services.rollouts.start("2.0.0", "all", WAVES, 1, 3600)
            view = await _until_stopped(bench, first)
            result.paused_s = time.monotonic() - started
            result.paused_wave = int(str(view["wave"]))
            rows = view["machines"]
            assert isinstance(rows, list)
            result.failed = sum(1 for m in rows if m["status"] == "failed")
            say(f"rollout [{bench.label}]: {view['status']} at wave {view['wave']}")
            await bench.services.rollouts.abort(first)

            started = time.monotonic()
            second = await bench.services.rollouts.start("2.1.0", "all", WAVES, 1, 3600)
            view = await _until_stopped(bench, second)
            result.finished_s = time.monotonic() - started
            rows = view["machines"]
            assert isinstance(rows, list)
            result.succeeded = sum(1 for m in rows if m["status"] == "succeeded")
            say(f"rollout [{bench.label}]: {view['status']}, {result.succeeded} succeeded")
        result.errors = list(fleet.errors)
        for error in fleet.errors[:5]:
            say(f"rollout [{bench.label}]: download error: {error}")
        total = sum(FILES.values())
        downloads = sum(len(m.updates_seen) for m in machines)
        result.downloaded_mib = downloads * total / 1048576
    return result


def section(results: list[RolloutResult]) -> Section:
    table = Table(
        [
            "Stack",
            "Machines",
            "Fleet online",
            "2 % failing, 1 % threshold: paused after",
            "Failed when paused",
            "0 % failing: every machine updated in",
            "Downloaded",
            "Download errors",
        ],
        [
            [
                r.label,
                str(r.machines),
                f"{r.online_s:.1f} s",
                f"{r.paused_s:.1f} s (wave {r.paused_wave} of {len(WAVES)})",
                str(r.failed),
                f"{r.finished_s:.1f} s ({r.succeeded} succeeded)",
                f"{r.downloaded_mib:.0f} MiB",
                str(len(r.errors)),
            ]
            for r in results
        ],
    )
    return Section(
        "Firmware rollouts",
        f"A rollout in waves {WAVES} of a release of {len(FILES)} files "
        f"({sum(FILES.values()) // 1024} KiB) to every machine: each downloads the "
        "manifest and each file (in two byte ranges) over HTTP and reconnects with the "
        "new `fw`. The leader steps rollouts once a second.",
        [table],
        notes=[
            "The fleet (its MQTT clients and HTTP downloads) runs in the benchmark's own "
            "process, beside the server and, on SQLite, the embedded broker: they share one "
            "event loop. A machine whose download got an error answers `failed` "
            "`download_failed` (the last column counts them), as a real one would.",
        ],
    )


async def run(quick: bool, workdir: Path) -> Section:
    machines = 100 if quick else 1000
    results = []
    for kind, opened in STACKS.items():
        (workdir / kind).mkdir(parents=True, exist_ok=True)
        async with opened(workdir / kind, machines) as bench:
            results.append(await _one(bench, workdir / kind))
    return section(results)

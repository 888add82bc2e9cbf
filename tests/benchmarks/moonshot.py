"""Moonshot: a very large fleet on one host, through edge brokers bridged to a core.

No process here may hold more than 20,000 open files, so no single broker takes the
whole fleet. The topology is the one docs/deployment.md describes for large fleets:
``write_edge_configs`` writes a core Mosquitto (the server's workers connect to it)
and several edge Mosquittos (machines connect to them), each bridged to the core.
A private PostgreSQL holds the fleet; ``smartvend serve --workers N`` serves it.
Simulated machines (``tests.benchmarks.light_fleet``: raw MQTT 3.1.1, one protocol
object per machine, tens of thousands per process) connect to the edges, one
simulator process per edge, all at once.

Measured: the time from starting the simulators until the database shows every
machine online; then, with every machine sending telemetry every ``telemetry_s``,
purchases spread over ``steady_s`` (pay to ``accepted``, as in the scale-out
section), telemetry stored against sent (the backlog) and, once telemetry stops,
how long the server takes to store the rest; memory (RSS) per machine of the
brokers, the server and the simulators; CPU per 1,000 messages of each.
"""

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.infra.db import create_engine, session_factory
from api.mqtt.accounts import server_credentials
from api.mqtt.mosquitto import EdgeLayout, write_edge_configs
from api.services.provision import provision
from api.settings import Settings
from device.simulate import load_credentials
from schema.models import Machine, MachineSlot
from tests.benchmarks.bench_scale import (
    CODE_TTL_S,
    count_online,
    count_telemetry,
    purchase,
)
from tests.benchmarks.measure import (
    NO_LATENCY,
    Latency,
    _processes,
    descendants,
    rss_bytes,
    say,
)
from tests.benchmarks.procs import MosquittoRun, Worker, config_dir, workers
from tests.benchmarks.report import Section, Table, Target, ms
from tests.support import stack
from tests.support.databases import migrate_async, postgres_server
from tests.support.ports import free_port
from tests.support.workers import serve_workers

PREFIX = "mm"
PER_PROCESS = 19_000  # connections per process, under the 20,000 open files cap
TARGET_ONLINE_S = 120.0
TARGET_PAY_P99_MS = 250.0
ONLINE_TIMEOUT_S = 600.0
STALL_S = 20.0
PURCHASE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class MoonPlan:
    machines: int = 100_000
    edges: int = 6  # edge brokers, and simulator processes (one per edge)
    workers: int = 2
    telemetry_s: float = 60.0
    steady_s: float = 120.0  # purchases are spread over this, after one telemetry period
    purchases: int = 60

    @classmethod
    def quick(cls) -> "MoonPlan":
        return cls(machines=2_000, edges=2, telemetry_s=10.0, steady_s=20.0, purchases=10)

    def check(self) -> None:
        if self.machines / self.edges > PER_PROCESS:
            raise SystemExit(
                f"{self.machines:,} machines over {self.edges} edges is more than "
                f"{PER_PROCESS:,} connections per broker and simulator process"
            )


@dataclass
class MoonResult:
    plan: MoonPlan
    ready_s: float = float("nan")  # the server started until every worker was ready
    online: int = 0
    online_s: float = float("nan")
    clients_s: float = float("nan")  # every simulator had every CONNACK
    refused: int = 0
    lost: int = 0
    pay: Latency = NO_LATENCY
    page: Latency = NO_LATENCY
    pay_failures: int = 0
    sent: int = 0  # telemetry during the steady phase
    stored: int = 0
    steady_window_s: float = float("nan")
    backlog_at_quiet: int = 0  # sent, not yet stored, when telemetry stopped
    lost_messages: int = 0  # sent, never stored
    drain_s: float = float("nan")  # from then until the rest was stored
    rss: dict[str, int] = field(default_factory=dict)  # bytes by component
    telemetry_row_bytes: float = float("nan")  # on disk, indexes included
    machine_row_bytes: float = float("nan")
    cpu: dict[str, float] = field(default_factory=dict)  # seconds over the steady window
    online_cpu: dict[str, float] = field(default_factory=dict)  # seconds while connecting
    online_fifths: list["Fifth"] = field(default_factory=list)  # the fleet's fifths in turn
    busiest: tuple[str, float] = ("", float("nan"))  # while connecting: its part, cores used
    notes: list[str] = field(default_factory=list)


async def _clone_fleet(url: str, template: str, machines: int) -> None:
    """Machines ``PREFIX-2`` .. ``PREFIX-N`` as copies of ``template`` (one slot each, the
    same key: their ids differ, and a broker checks each CONNECT the same way whatever
    the key), with distinct display codes; in a few statements instead of N transactions."""
    engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    table = Machine.__table__
    slot_table = MachineSlot.__table__
    now = int(time.time())
    code = "lpad(((g * 7919 + 13) % 1000000)::text, 6, '0')"
    replaced = {
        "id": f"'{PREFIX}-' || g",
        "name": "'Moonshot ' || g",
        "display_code": code,
        "display_code_expires_at": str(now + CODE_TTL_S),
    }
    columns = [c.name for c in table.columns]
    chosen = [replaced.get(c, f"t.{c}") for c in columns]
    slot_columns = [c.name for c in slot_table.columns if c.name != "id"]
    slot_chosen = [f"'{PREFIX}-' || g" if c == "machine_id" else f"t.{c}" for c in slot_columns]
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE machines SET display_code = :code, display_code_expires_at = "
                    ":expires WHERE id = :template"
                ),
                {
                    "code": f"{(1 * 7919 + 13) % 1_000_000:06d}",
                    "expires": now + CODE_TTL_S,
                    "template": template,
                },
            )
            await conn.execute(
                text(
                    f"INSERT INTO machines ({', '.join(columns)}) SELECT {', '.join(chosen)} "
                    f"FROM machines t, generate_series(2, :n) g WHERE t.id = :template"
                ),
                {"n": machines, "template": template},
            )
            await conn.execute(
                text(
                    f"INSERT INTO machine_slots ({', '.join(slot_columns)}) SELECT "
                    f"{', '.join(slot_chosen)} FROM machine_slots t, generate_series(2, :n) g "
                    f"WHERE t.machine_id = :template"
                ),
                {"n": machines, "template": template},
            )
        async with engine.connect() as plain:
            conn = await plain.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE machines"))
            await conn.execute(text("VACUUM ANALYZE machine_slots"))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def topology(
    plan: MoonPlan, workdir: Path
) -> AsyncIterator[tuple[str, EdgeLayout, list[tuple[str, str]], dict[str, MosquittoRun]]]:
    """PostgreSQL with the fleet, a core Mosquitto and its edges: yields the database
    URL, the layout, the machines' credentials and the brokers by name."""
    say("moonshot: starting a private PostgreSQL")
    with postgres_server() as pg:
        name = await asyncio.to_thread(pg.create_database)
        url = pg.url(name)
        await migrate_async(url)
        settings = stack.test_settings(workdir, database_url=url)
        started = time.monotonic()
        creds_file = await provision(settings, 1, PREFIX, workdir / "machines.json")
        (template, key), *_ = load_credentials(str(creds_file))
        await _clone_fleet(url, template, plan.machines)
        say(f"moonshot: {plan.machines:,} machines in {time.monotonic() - started:.0f} s")
        credentials = [(f"{PREFIX}-{n}", str(key)) for n in range(1, plan.machines + 1)]
        conf_dir = config_dir("smartvend-bench-moonshot-")
        try:
            layout, brokers = await _brokers(plan, settings, url, conf_dir)
            try:
                yield url, layout, credentials, brokers
            finally:
                for broker in brokers.values():
                    await broker.stop()
        finally:
            shutil.rmtree(conf_dir, ignore_errors=True)


async def _brokers(
    plan: MoonPlan, settings: Settings, url: str, conf_dir: Path
) -> tuple[EdgeLayout, dict[str, MosquittoRun]]:
    """The core and its edges, started; on free ports (tried again if one was taken
    between choosing it and the broker binding it: other work shares the host)."""
    creds = server_credentials(settings)
    for attempt in range(1, 4):
        layout = EdgeLayout(
            core_port=free_port(),
            server_port=free_port(),
            edge_ports=tuple(free_port() for _ in range(plan.edges)),
            edge_username="smartvend-edge",
            edge_password=os.urandom(18).hex(),
        )
        engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            paths = await write_edge_configs(
                session_factory(engine),
                conf_dir,
                layout,
                server_username=creds.username,
                server_password=creds.password,
                assign=lambda mid: (int(mid.rsplit("-", 1)[1]) - 1) % plan.edges + 1,
            )
        finally:
            await engine.dispose()
        brokers = {
            "core": MosquittoRun(
                paths["core"], layout.host, layout.core_port, conf_dir / "core.log"
            )
        }
        for n, port in enumerate(layout.edge_ports, start=1):
            brokers[f"edge-{n}"] = MosquittoRun(
                paths[f"edge-{n}"], layout.host, port, conf_dir / f"edge-{n}.log", 300.0
            )
        try:
            # Each loads its accounts at start (tens of seconds for tens of thousands).
            await asyncio.gather(*(broker.start() for broker in brokers.values()))
        except BaseException as exc:  # none may outlive this, whatever stopped it
            for broker in brokers.values():
                await broker.stop()
            if not isinstance(exc, (RuntimeError, TimeoutError)):
                raise
            logs = " | ".join(
                (conf_dir / f"{name}.log").read_text(errors="replace")[-300:]
                for name in brokers
                if (conf_dir / f"{name}.log").exists()
            )
            say(f"moonshot: brokers did not start ({exc}; attempt {attempt}): {logs}")
            continue
        say(f"moonshot: core broker and {plan.edges} edges up")
        return layout, brokers
    raise RuntimeError("the brokers did not start three times in a row")


def worker_settings(url: str, layout: EdgeLayout, workdir: Path, **extra: str) -> dict[str, str]:
    """The server's settings on this topology: its database, the core's server listener,
    display codes that outlive the run; ``extra`` on top."""
    mqtt_url = f"mqtt://{layout.host}:{layout.server_port}"
    return stack.server_environ(
        url, workdir / "var", mqtt_url, **{"display_code_ttl_s": str(CODE_TTL_S), **extra}
    )


def _tree_rss(root: int) -> int:
    total = 0
    for pid in descendants(_processes(), {root}):
        with contextlib.suppress(OSError, RuntimeError):
            total += rss_bytes(pid)
    return total


def postgres_pids(url: str) -> list[int]:
    """Our private PostgreSQL's postmaster (its backends are its children), by its port:
    other PostgreSQL servers may run on the host."""
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    return [
        pid
        for pid, (_, _, cmd) in _processes().items()
        if "postgres" in cmd and " -D " in cmd and f"port={port}" in cmd.replace(" ", "")
    ]


GROUPS = ("server", "postgres", "edges", "core", "simulators")


def _cpu_by_process(
    server_pid: int, brokers: dict[str, MosquittoRun], pg: list[int], fleet: list[Worker]
) -> dict[int, tuple[str, float]]:
    """pid -> (its part of the run, CPU seconds so far) for every process of the run."""
    procs = _processes(reaped=True)
    roots = {
        "server": {server_pid},
        "postgres": set(pg),
        "edges": {b.pid for n, b in brokers.items() if n != "core"},
        "core": {brokers["core"].pid},
        "simulators": {w.pid for w in fleet},
    }
    return {
        pid: (group, procs[pid][1])
        for group, tops in roots.items()
        for pid in descendants(procs, tops)
        if pid in procs
    }


def _by_group(cpu: dict[int, tuple[str, float]]) -> dict[str, float]:
    out = dict.fromkeys(GROUPS, 0.0)
    for group, seconds in cpu.values():
        out[group] += seconds
    return out


Reading = tuple[float, int, dict[str, float]]  # seconds, machines online, CPU by part


@dataclass(frozen=True)
class Fifth:
    """One fifth of the fleet coming online: its rate and what each part spent per machine."""

    rate: float  # machines a second
    cores: dict[str, float]  # cores used by each part (CPU seconds a second)

    def cpu_ms(self, part: str) -> float:
        """CPU per machine that came online, of ``part``."""
        return self.cores[part] * 1000 / self.rate


def fifths(timeline: list[Reading], total: int) -> list[Fifth]:
    """How the connect phase changed as the fleet came in, from readings taken along it."""
    out, start = [], timeline[0] if timeline else (0.0, 0, {})
    for n in range(1, 6):
        goal = total * n // 5
        end = next((r for r in timeline if r[1] >= goal), None)
        if end is None:
            break
        seconds, machines = end[0] - start[0], end[1] - start[1]
        if seconds > 0 and machines > 0:
            cores = {k: (end[2][k] - start[2][k]) / seconds for k in GROUPS}
            out.append(Fifth(machines / seconds, cores))
            start = end
    return out


async def _online(
    db: async_sessionmaker[AsyncSession],
    fleet: list[Worker],
    result: MoonResult,
    cpu: Callable[[], dict[int, tuple[str, float]]],
) -> None:
    cpu_before = cpu()
    timeline: list[Reading] = [(0.0, 0, _by_group(cpu_before))]
    started = time.monotonic()
    readies = [asyncio.create_task(w.expect("ready", ONLINE_TIMEOUT_S)) for w in fleet]
    last_said = started
    while (count := await count_online(db)) < result.plan.machines:
        now = time.monotonic()
        timeline.append((now - started, count, _by_group(cpu())))
        if now - started > ONLINE_TIMEOUT_S:
            break
        if now - last_said >= 10:
            say(f"moonshot: {count:,}/{result.plan.machines:,} online in the database")
            last_said = now
        await asyncio.sleep(1.0)
    result.online = count
    if count >= result.plan.machines:
        result.online_s = time.monotonic() - started
        after = cpu()
        ended, begun = _by_group(after), _by_group(cpu_before)
        timeline.append((result.online_s, count, ended))
        result.online_cpu = {k: ended[k] - begun[k] for k in GROUPS}
        spent = {pid: (g, c - cpu_before.get(pid, (g, 0.0))[1]) for pid, (g, c) in after.items()}
        group, seconds = max(spent.values(), key=lambda gc: gc[1])
        result.busiest = (group, seconds / result.online_s)
        result.online_fifths = fifths(timeline, result.plan.machines)
    with contextlib.suppress(TimeoutError, RuntimeError):
        async with asyncio.timeout(60):
            done = await asyncio.gather(*readies)
            result.clients_s = max(float(d["seconds"]) for d in done)
    for task in readies:
        task.cancel()
    say(f"moonshot: {count:,} online after {result.online_s:.1f} s")


async def _purchases(
    url: str, db: async_sessionmaker[AsyncSession], result: MoonResult, first: int
) -> None:
    plan = result.plan
    gap = plan.steady_s / max(1, plan.purchases)
    latencies: list[float] = []
    pages: list[float] = []
    limits = httpx.Limits(max_keepalive_connections=0)  # each request to any worker
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        for n in range(plan.purchases):
            due = time.monotonic() + gap
            mid = f"{PREFIX}-{first + n * (plan.machines // max(1, plan.purchases))}"
            try:
                page_s, accepted_s = await asyncio.wait_for(
                    purchase(http, db, mid, n), PURCHASE_TIMEOUT_S
                )
                pages.append(page_s)
                latencies.append(accepted_s)
            except (httpx.HTTPError, TimeoutError, AssertionError, StopAsyncIteration) as exc:
                result.pay_failures += 1
                say(f"moonshot: purchase {n} on {mid} failed: {exc!r}")
            await asyncio.sleep(max(0.0, due - time.monotonic()))
    result.pay = Latency.of(latencies)
    result.page = Latency.of(pages)


async def _drained(db: async_sessionmaker[AsyncSession], target: int) -> tuple[int, float]:
    """Telemetry rows until ``target`` or no change for STALL_S; rows and seconds taken."""
    started = time.monotonic()
    last, last_change = -1, started
    while True:
        got = await count_telemetry(db)
        now = time.monotonic()
        if got != last:
            last, last_change = got, now
        if got >= target or now - last_change > STALL_S:
            return got, last_change - started
        await asyncio.sleep(0.25)


async def run(plan: MoonPlan, workdir: Path) -> Section:
    plan.check()
    result = MoonResult(plan)
    async with topology(plan, workdir) as (url, layout, credentials, brokers):
        settings = worker_settings(url, layout, workdir, alert_interval_s="0")
        parts = [credentials[i :: plan.edges] for i in range(plan.edges)]
        cfgs = [
            {"host": layout.host, "port": layout.edge_ports[i], "machines": p, "boot": 1}
            for i, p in enumerate(parts)
        ]
        engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
        db = session_factory(engine)
        try:
            begun = time.monotonic()
            async with serve_workers(plan.workers, settings, workdir, ONLINE_TIMEOUT_S) as server:
                result.ready_s = time.monotonic() - begun
                say(f"moonshot: {plan.workers} workers up; starting {plan.machines:,} machines")
                async with workers("light", cfgs, workdir) as fleet:
                    pg = postgres_pids(url)
                    pid = server.process.pid
                    await asyncio.gather(*(w.expect("started", 120) for w in fleet))
                    await _online(
                        db, fleet, result, lambda: _cpu_by_process(pid, brokers, pg, fleet)
                    )
                    await _steady(plan, result, fleet, pid, brokers, db, server.url, pg)
        finally:
            await engine.dispose()
    return section(result)


async def _steady(
    plan: MoonPlan,
    result: MoonResult,
    fleet: list[Worker],
    server_pid: int,
    brokers: dict[str, MosquittoRun],
    db: async_sessionmaker[AsyncSession],
    url: str,
    pg: list[int],
) -> None:
    for worker in fleet:
        worker.send(f"steady {plan.telemetry_s}")
    await asyncio.gather(*(w.expect("steady", 60) for w in fleet))
    say(f"moonshot: steady telemetry every {plan.telemetry_s:.0f} s; one period to settle")
    await asyncio.sleep(plan.telemetry_s)  # every machine has reported once
    result.rss = {
        "edges": sum(rss_bytes(b.pid) for n, b in brokers.items() if n != "core"),
        "core": rss_bytes(brokers["core"].pid),
        "server": _tree_rss(server_pid),
        "simulators": sum(rss_bytes(w.pid) for w in fleet),
    }
    stored_before = await count_telemetry(db)
    cpu_before = _by_group(_cpu_by_process(server_pid, brokers, pg, fleet))
    sent_before = await _sent(fleet, "quiet")  # a quiet/steady pair reads the counters
    for worker in fleet:
        worker.send(f"steady {plan.telemetry_s}")
    await asyncio.gather(*(w.expect("steady", 60) for w in fleet))
    started = time.monotonic()
    say(f"moonshot: {plan.purchases} purchases over {plan.steady_s:.0f} s")
    await _purchases(url, db, result, 2)
    sent_after = await _sent(fleet, "quiet")  # every telemetry message sent since the start
    result.steady_window_s = time.monotonic() - started
    stored_at_quiet = await count_telemetry(db)  # every one stored (a fresh database)
    result.sent = sent_after - sent_before
    result.backlog_at_quiet = max(0, sent_after - stored_at_quiet)
    stored, result.drain_s = await _drained(db, sent_after)
    result.stored = stored - stored_before
    result.lost_messages = max(0, sent_after - stored)
    cpu_after = _by_group(_cpu_by_process(server_pid, brokers, pg, fleet))
    result.cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_before}
    result.telemetry_row_bytes, result.machine_row_bytes = await _row_sizes(db)
    progress = await asyncio.gather(*(w.expect("progress", 30) for w in fleet))
    result.refused = sum(int(p["refused"]) for p in progress)
    result.lost = sum(int(p["lost"]) for p in progress)
    say(
        f"moonshot: pay to accepted p50 {result.pay.p50:.1f} ms p99 {result.pay.p99:.1f} ms "
        f"({result.pay_failures} failed); telemetry sent {result.sent:,}, stored "
        f"{result.stored:,}, backlog when it stopped {result.backlog_at_quiet:,}, stored "
        f"{result.drain_s:.1f} s later; lost links {result.lost}"
    )


async def _row_sizes(db: async_sessionmaker[AsyncSession]) -> tuple[float, float]:
    """Bytes on disk per telemetry row and per machine (tables with their indexes)."""
    async with db() as s:
        found = []
        for table in ("telemetry", "machines"):
            size = await s.scalar(text(f"SELECT pg_total_relation_size('{table}')"))
            rows = await s.scalar(text(f"SELECT count(*) FROM {table}"))
            found.append(int(size or 0) / max(1, int(rows or 0)))
    return found[0], found[1]


async def _sent(fleet: list[Worker], word: str) -> int:
    for worker in fleet:
        worker.send(word)
    answers = await asyncio.gather(*(w.expect(word, 60) for w in fleet))
    return sum(int(a["sent"]) for a in answers)


def _kib(total: int, machines: int) -> str:
    return f"{total / max(1, machines) / 1024:.1f} KiB"


def section(r: MoonResult) -> Section:
    p = r.plan
    table = Table(["", "measured"])
    table.add(
        "machines, edge brokers (one simulator process each), workers",
        f"{p.machines:,}, {p.edges}, {p.workers}",
    )
    table.add(
        "the server ready, from its start (its leader first publishes every machine's "
        "retained `desired` and `state` again)",
        f"{r.ready_s:.1f} s",
    )
    table.add(
        "all online in the database (simulators started)",
        f"{r.online_s:.1f} s" if r.online >= p.machines else f"only {r.online:,}",
    )
    table.add("... every simulator had every CONNACK", f"{r.clients_s:.1f} s")
    table.add(
        "... machines online a second, over each fifth of the fleet",
        " / ".join(f"{f.rate:,.0f}" for f in r.online_fifths) or "not measured",
    )
    if r.online_fifths:
        for name, fifth in (("first", r.online_fifths[0]), ("last", r.online_fifths[-1])):
            table.add(
                f"... cores used over the {name} fifth: " + " / ".join(_LABELS[k] for k in GROUPS),
                " / ".join(f"{fifth.cores[k]:.2f}" for k in GROUPS),
            )
    table.add(
        "... CPU while connecting, per machine: " + " / ".join(_LABELS[k] for k in GROUPS),
        " / ".join(f"{r.online_cpu.get(k, 0.0) * 1000 / p.machines:.2f} ms" for k in GROUPS),
    )
    table.add(
        "... the busiest process while connecting",
        f"{_ONE[r.busiest[0]]}, {r.busiest[1]:.2f} of a core" if r.busiest[0] else "not measured",
    )
    table.add("connections refused / lost", f"{r.refused:,} / {r.lost:,}")
    table.add(
        f"pay to `accepted` p50 / p99 ({p.purchases} purchases over {p.steady_s:.0f} s)",
        f"{ms(r.pay.p50)} / {ms(r.pay.p99)} ({r.pay_failures} failed)",
    )
    table.add(
        "verify-payment to the order page showing paid, p50 / p99",
        f"{ms(r.page.p50)} / {ms(r.page.p99)}",
    )
    rate = r.sent / r.steady_window_s if r.steady_window_s > 0 else 0.0
    table.add(
        f"telemetry sent / stored (every machine every {p.telemetry_s:.0f} s)",
        f"{r.sent:,} / {r.stored:,} in {r.steady_window_s:.0f} s ({rate:,.0f} msg/s)",
    )
    table.add(
        "backlog when telemetry stopped; the rest stored within; never stored",
        f"{r.backlog_at_quiet:,} messages; {r.drain_s:.1f} s; {r.lost_messages:,}",
    )
    for name in ("edges", "core", "server", "simulators"):
        table.add(f"RSS per machine: {name}", _kib(r.rss.get(name, 0), p.machines))
    per = max(1, r.sent) / 1000
    table.add(
        "CPU per 1,000 telemetry messages: " + " / ".join(_LABELS[k] for k in GROUPS),
        " / ".join(f"{r.cpu.get(k, 0.0) * 1000 / per:.0f} ms" for k in GROUPS),
    )
    table.add(
        "PostgreSQL bytes per telemetry row / per machine (with indexes)",
        f"{r.telemetry_row_bytes:.0f} B / {r.machine_row_bytes:.0f} B",
    )
    out = Section("Moonshot: a very large fleet through edge brokers", _intro(), [table])
    out.targets.append(
        Target(
            f"{p.machines:,} machines online, edges bridged to a core, {p.workers} workers",
            f"<= {TARGET_ONLINE_S:.0f} s",
            f"{r.online_s:.1f} s",
            r.online >= p.machines and r.online_s <= TARGET_ONLINE_S,
            _online_why(r),
        )
    )
    out.targets.append(
        Target(
            f"ingestion without backlog, {p.machines:,} machines every {p.telemetry_s:.0f} s",
            "backlog stored within 5 s of the end",
            f"{r.backlog_at_quiet:,} waiting, stored in {r.drain_s:.1f} s",
            not r.lost_messages and r.drain_s <= 5.0,
            "See the section.",
        )
    )
    out.targets.append(
        Target(
            f"pay to `accepted` p99, {p.machines:,} machines",
            f"<= {TARGET_PAY_P99_MS:.0f} ms",
            ms(r.pay.p99),
            r.pay.p99 <= TARGET_PAY_P99_MS and not r.pay_failures,
            "See the section.",
        )
    )
    out.notes += r.notes
    return out


_LABELS = {
    "server": "server",
    "postgres": "PostgreSQL",
    "edges": "edges",
    "core": "core",
    "simulators": "simulators",
}


_ONE = {
    "server": "a server worker",
    "postgres": "a PostgreSQL process",
    "edges": "an edge broker",
    "core": "the core broker",
    "simulators": "a simulator",
}
SATURATED = 0.85  # a process using this much of a core sets the pace


def _online_why(r: MoonResult) -> str:
    """Where the connect phase's time went, from the CPU each part used meanwhile."""
    if not r.online_cpu or not r.online_s > 0:
        return "See the section."
    cores = os.cpu_count() or 1
    available = cores * r.online_s
    used = sum(r.online_cpu.values())
    parts = sorted(GROUPS, key=lambda k: -r.online_cpu.get(k, 0.0))
    shares = ", ".join(
        f"{_LABELS[k]} {r.online_cpu[k]:.0f} s ({r.online_cpu[k] / used:.0%})" for k in parts
    )
    trend = ""
    if len(r.online_fifths) >= 2:
        first, last = r.online_fifths[0], r.online_fifths[-1]
        ratio = first.rate / last.rate
        trend = (
            f" Machines came online at {first.rate:,.0f} a second over the first fifth of the "
            f"fleet and {last.rate:,.0f} over the last ({ratio:.1f} times fewer), while the "
            f"parts used {sum(first.cores.values()):.2f} and {sum(last.cores.values()):.2f} "
            f"cores: per machine that came online, the server spent {first.cpu_ms('server'):.2f} "
            f"then {last.cpu_ms('server'):.2f} ms, the edges {first.cpu_ms('edges'):.2f} then "
            f"{last.cpu_ms('edges'):.2f} ms. Besides connecting machines, the parts serve those "
            f"already online: each sends a keepalive once a minute through its edge (as its "
            f"telemetry would), and the server's leader publishes a `state` for each arrival "
            f"to the core."
        )
    group, share = r.busiest
    if share >= SATURATED:
        pace = " That one process, on its one core, set the pace."
    elif used >= 0.8 * available:
        pace = f" The host's {cores} cores, nearly all busy, set the pace."
    else:
        pace = ""
    return (
        f"While the fleet connected, its processes used {used:.0f} of the host's "
        f"{available:.0f} core-seconds ({cores} cores for {r.online_s:.0f} s, "
        f"{used / available:.0%}): {shares}.{trend} The busiest single process was "
        f"{_ONE.get(group, group)}, at {share:.2f} of a core.{pace}"
    )


def _intro() -> str:
    return " ".join((__doc__ or "").split("\n\n", 1)[1].split()).replace("``", "`")

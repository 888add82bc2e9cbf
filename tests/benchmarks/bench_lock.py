"""Lock-by-code against its floor, side by side in one run, on both stacks.

The floor is a bare Starlette app under uvicorn (its defaults) with one route doing
one indexed ``UPDATE`` per request, on the same database through the same driver
(``api.infra.db``: SQLAlchemy async, the same pool settings and, on SQLite, the same
writer queue). The server is ``smartvend serve`` as its own process tree (SQLite
with the embedded broker, or PostgreSQL with Mosquitto), with the machines connected
(``device.simulator.Fleet`` in its own process) so every lock's ``desired`` reaches
a machine and its ``reported`` comes back, as in the field. One client process
(plain asyncio HTTP/1.1, a connection per shopper) hits both: a burst of shoppers
pressing at once, each sending one request for its own machine and then one to let
it go (the floor gets the same two requests); then, on the server only, locks
arriving at random (Poisson).

Run alone: ``python -m tests.benchmarks --only lock --output docs/performance.md``.
The client and the floor are this module run as a process:
``python -m tests.benchmarks.bench_lock client|floor CONFIG``.
"""

import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from api.mqtt.accounts import server_credentials
from api.mqtt.mosquitto import write_mosquitto_config
from api.server.runtime import open_runtime
from api.services.catalogue import ProductFields
from api.services.provision import provision
from api.services.slots import SlotPlan
from schema.models import Machine
from tests.benchmarks.measure import Latency, cpu_seconds, flame_graph, say, tree_cpu
from tests.benchmarks.procs import ROOT, MosquittoRun, config_dir, wait_listening, workers
from tests.benchmarks.report import Section, Table, Target, ms
from tests.benchmarks.stacks import LABELS
from tests.support.databases import migrate_async, postgres_server, sqlite_url
from tests.support.ports import free_port
from tests.support.stack import SECRET, test_settings
from tests.support.workers import serve_workers

TITLE = "Lock-by-code"
PREFIX = "lk"
SLOTS_WIDE = 6
FLOOR_RATIO = 0.6
FLOOR_P99_RATIO = 2.0
WORKERS_RATIO = 2.0
STEADY_P99_MS = 100.0
SLOTS_WITHIN = 0.10
START_TIMEOUT_S = 120.0
# What the profiles showed and what changed (measured 2026-12-04; kept with every run).
NOTES: tuple[str, ...] = (
    "**Where a lock's time goes.** py-spy (`BENCH_LOCK_PROFILE=DIR`: 100 samples a second "
    "of whichever server thread holds the interpreter, during the first burst of each "
    "kind, one flame graph per kind) before the "
    "changes below: [SQLite + embedded broker](img/lock-before-embedded.svg), [PostgreSQL "
    "+ Mosquitto](img/lock-before-postgres.svg); after them: "
    "[SQLite](img/lock-after-embedded.svg), [PostgreSQL](img/lock-after-postgres.svg). "
    "Before, on SQLite, half the samples were the event loop's own work and the other "
    "half SQLAlchemy running statements (its async layer runs them in greenlets, drawn as "
    "separate stacks): the lock's transaction (load the machine and its lock, take the "
    "code with a compare-and-set `UPDATE`, add the lock, replace the machine's "
    "unpublished `desired` and `state`) is 12 % on the loop, the unlock (the lifecycle "
    "ends the lock: the vend loaded, unpaid orders expired, a new code, `desired` and "
    "`state` again) 10 %, uvicorn's h11 protocol 7 %, the MQTT bridge (draining the "
    "outbox, applying the machines' `reported`) 13 % and the embedded broker 9 %; the "
    "middleware and routing together about 1.5 %, reading and writing the JSON about 1 %. "
    "On PostgreSQL the shared rate budgets were 18 % of the samples: a transaction to "
    "take, one to give back (a `SELECT ... FOR UPDATE` and an `UPDATE` per bucket) and "
    "for a code-only guess one more for the credit, each holding the address's bucket, "
    "which every shopper behind one network shares, across round trips of a busy event "
    "loop. Code-only guesses queued behind one process-wide turn, so they ran one at a "
    "time.",
    "**What changed.** (1) Code-only guesses run side by side: each still pays every "
    "budget before its code is checked, and a guess refused by a budget that guesses in "
    "flight hold waits for them instead of queueing behind all of them (guesses at one "
    "machine still take turns; docs/security.md's bounds are unchanged, and the crowd "
    "tests hold). (2) The shared budgets on PostgreSQL: a take and a give-back are one "
    "statement each, committed on its own (no row lock outlives its statement), over "
    "arrays, so each is compiled and prepared once; a profile in between showed the "
    "statements built by SQLAlchemy for every guess taking 40 % of the samples. (3) "
    "uvicorn serves with httptools' parser (the header timeout kept) and uvloop (since "
    "dropped: see below). (4) A "
    "named machine that is offline or out of service answers 503 before its code is "
    "judged; a machine's failed codes are counted with one `UPDATE`. The lock itself was "
    "already one transaction; the unlock's path belongs to the vend lifecycle and is "
    "unchanged.",
    "**Then, the lock path in statements (2026-12-04, afternoon).** The profile after "
    "the changes above still had half of SQLite's samples in SQLAlchemy: the ORM's "
    "identity map and unit of work, and for every statement an execution context, "
    "result metadata and the async layer's greenlet hops, each over a hundred "
    "microseconds of Python where SQLite takes ten. (5) The lock and the unlock read "
    "their rows with prepared Core statements into detached objects and write with "
    "statements (`api/services/lock_rows.py`, `vend_writer.take_lock` and `end_lock`; "
    "the lifecycle still decides a lock's end): a lock is 5 statements (was 6 through "
    "the ORM), an unlock 6 (was 11): the lock, its machine and its orders in one "
    "`SELECT`, a new code's uniqueness checked inside its `UPDATE`. (6) Those statements "
    "run on the driver's own connection (`api/infra/prepared.py`: compiled once per "
    "dialect by SQLAlchemy, its type processors, SQLAlchemy's errors), inline on SQLite, "
    "through asyncpg's cached prepared statements on PostgreSQL; so do the shared "
    "budgets' take and give-back, and give-backs that arrive while one is written are "
    "written together. (7) Pooled PostgreSQL connections are pinged only after 2 s idle "
    "(a ping per checkout is a round trip per transaction, and a lock makes several) and "
    "are no longer closed on return past 10 (a crowd opened the others again, TLS "
    "negotiation included, every burst). (8) Field names are written without a "
    "character scan. Flame graphs after these: [SQLite](img/lock-statements-embedded.svg), "
    "[PostgreSQL](img/lock-statements-postgres.svg).",
    "**The event loop.** The server runs on asyncio's own event loop again, and the floor "
    "on the same one, so the two compare alike: on uvloop the server's MQTT client "
    "(aiomqtt over paho) could miss a broker restart until its keepalive ran out, about "
    "20 s in which no command or new code went out (the chaos test, a worker killed and "
    "Mosquitto restarted under purchases, failed about one run in three on uvloop and "
    "passed eight in a row without it). The flame graphs in this section were recorded "
    "on uvloop.",
    "**What is left.** The HTTP stack (uvicorn, Starlette, the middleware, the access "
    "log) costs what the floor's does; the rest of a lock is the MQTT side the floor does "
    "not have: two retained messages published per lock and per unlock, the broker "
    "(in the server's process on SQLite) routing them, and the machine's `reported` "
    "applied. One burst of each kind, profiled on 2026-12-04 at 15:55 UTC: one-slot "
    "machines on [SQLite](img/lock-burst-embedded-named.svg) and "
    "[PostgreSQL](img/lock-burst-postgres-named.svg), six-slot machines on "
    "[SQLite](img/lock-burst-embedded-six-slot.svg) and "
    "[PostgreSQL](img/lock-burst-postgres-six-slot.svg). A six-slot machine's `desired` "
    "and `state` carry its slots, which the wire's field table checks and writes at every "
    "lock and unlock; in that run the two kinds cost the server the same CPU per request "
    "within 3 % (2.14 and 2.19 ms on SQLite, 2.73 and 2.81 ms on PostgreSQL). In the "
    "steady run each lock is "
    "alone, so its outbox drain, its broker traffic and its `reported` are not shared "
    "with others as in a burst, and the CPU per request is higher than the bursts'. "
    "More workers on two cores shared with PostgreSQL, Mosquitto, the fleet "
    "and the client add processes, not cores (each worker runs its own bridge, pool and "
    "periodic work).",
)


@dataclass(frozen=True)
class Plan:
    shoppers: int = 200  # one burst; also the one-slot and the six-slot machines each
    rounds: int = 2  # bursts of each kind, interleaved
    steady_rate: float = 100.0
    steady_s: float = 20.0
    many_workers: int = 4

    @classmethod
    def quick(cls) -> "Plan":
        return cls(shoppers=40, rounds=1, steady_rate=20.0, steady_s=5.0, many_workers=2)


@dataclass
class Burst:
    """Every burst of one kind on one stack, added up."""

    locks: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    unlocks: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    def add(self, done: dict[str, Any], server_cpu_s: float, client_cpu_s: float) -> None:
        self.locks += len(done["latencies"])
        self.seconds += float(done["seconds"])
        self.latencies += done["latencies"]
        for mine, theirs in ((self.statuses, done["statuses"]), (self.unlocks, done["unlocks"])):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        self.requests += len(done["latencies"]) + sum(done["unlocks"].values())
        self.server_cpu_s += server_cpu_s
        self.client_cpu_s += client_cpu_s

    @property
    def rate(self) -> float:
        return self.locks / self.seconds if self.seconds else float("nan")

    @property
    def latency(self) -> Latency:
        return Latency.of(self.latencies)

    def cpu_ms(self, seconds: float) -> float:
        return seconds * 1000 / self.requests if self.requests else float("nan")

    def answers(self) -> str:
        def said(counts: dict[str, int]) -> str:
            return ", ".join(f"{n} x {k}" for k, n in sorted(counts.items()))

        return f"{said(self.statuses)}; unlocks {said(self.unlocks)}"


@dataclass
class StackResult:
    kind: str
    bursts: dict[str, Burst] = field(default_factory=dict)
    steady: Burst = field(default_factory=Burst)
    steady_asked: int = 0

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    def burst(self, name: str) -> Burst:
        return self.bursts.setdefault(name, Burst())


# ---------------------------------------------------------------------------- the processes


class Process:
    """This module run as ``role``: JSON lines out, JSON commands in, EOF stops it."""

    def __init__(self, role: str, config: dict[str, Any], workdir: Path) -> None:
        self.role = role
        fd, name = tempfile.mkstemp(prefix=f"lock-{role}-", suffix=".json", dir=workdir)
        os.close(fd)
        self.config = Path(name)
        self.config.write_text(json.dumps(config))
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def __aenter__(self) -> "Process":
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.benchmarks.bench_lock",
            self.role,
            str(self.config),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 26,
        )
        await self.expect("ready", 60)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        self.config.unlink(missing_ok=True)

    async def expect(self, event: str, within: float = 600.0) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        async with asyncio.timeout(within):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{self.role} exited ({await self.proc.wait()})")
                found: dict[str, Any] = json.loads(line)
                if found.get("event") == event:
                    return found

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.expect("done")


# ---------------------------------------------------------------------------- the stacks


async def _machines(url: str, workdir: Path, plan: Plan, **overrides: object) -> Path:
    """One-slot machines ``lk-1..N`` and six-slot ones ``lk-N+1..2N``; their keys' file."""
    await migrate_async(url)
    settings = test_settings(workdir, database_url=url, **overrides)
    say(f"lock: provisioning {2 * plan.shoppers} machines")
    credentials = await provision(settings, 2 * plan.shoppers, PREFIX, workdir / "machines.json")
    async with open_runtime(settings) as rt:
        catalogue, slots = rt.services.catalogue, rt.services.slots
        products = [
            (await catalogue.create(ProductFields(name=f"Snack {n}", price_amount=1000 + n)))["id"]
            for n in range(SLOTS_WIDE)
        ]
        plans = [
            SlotPlan(f"A{n + 1}", n, product, capacity=10, par=8, stock=8)
            for n, product in enumerate(products)
        ]
        for n in range(plan.shoppers + 1, 2 * plan.shoppers + 1):
            await slots.put(f"{PREFIX}-{n}", 0, plans)
    return credentials


@contextlib.asynccontextmanager
async def _stack(
    kind: str, workdir: Path, plan: Plan
) -> AsyncIterator[tuple[str, int, dict[str, str]]]:
    """The database URL, the machines' MQTT port and the server's settings (as environment
    values)."""
    base = {"env": "test", "secret_key": SECRET, "alert_interval_s": "0"}
    if kind == "embedded":
        url = sqlite_url(workdir)
        await _machines(url, workdir, plan)
        port = free_port()
        yield url, port, {**base, "database_url": url, "mqtt_port": str(port)}
        return
    say("lock: starting a private PostgreSQL")
    with postgres_server() as pg:
        url = pg.url(await asyncio.to_thread(pg.create_database))
        device_port, server_port = free_port(), free_port()
        await _machines(url, workdir, plan, mqtt_url=f"mqtt://127.0.0.1:{device_port}")
        settings = test_settings(workdir, database_url=url)
        creds = server_credentials(settings)
        conf_dir = config_dir("smartvend-bench-mosquitto-")
        try:
            async with open_runtime(settings) as rt:
                paths = await write_mosquitto_config(
                    rt.services.ctx.db,
                    conf_dir,
                    port=device_port,
                    host="127.0.0.1",
                    server_username=creds.username,
                    server_password=creds.password,
                    server_port=server_port,
                )
            mosquitto = MosquittoRun(paths[-1], "127.0.0.1", device_port, conf_dir / "log")
            await mosquitto.start()
            try:
                server = {"database_url": url, "mqtt_url": f"mqtt://127.0.0.1:{server_port}"}
                yield url, device_port, {**base, **server}
            finally:
                await mosquitto.stop()
        finally:
            shutil.rmtree(conf_dir, ignore_errors=True)


def _async_url(url: str) -> str:
    return test_settings(Path("/nonexistent"), database_url=url).async_database_url


async def _online(url: str, count: int) -> None:
    from api.infra.db import create_engine, session_factory

    engine = create_engine(_async_url(url))
    db = session_factory(engine)
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                async with db() as s:
                    found = await s.scalar(
                        select(func.count())
                        .select_from(Machine)
                        .where(Machine.online, Machine.display_code.is_not(None))
                    )
                if int(found or 0) >= count:
                    return
                await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------- the measuring


@contextlib.asynccontextmanager
async def _profiling(pid: int, name: str, wanted: bool) -> AsyncIterator[None]:
    """With ``BENCH_LOCK_PROFILE=DIR`` (and ``wanted``): py-spy records the server during
    a burst, as a flame graph ``DIR/lock-NAME.svg`` (py-spy needs ptrace: run as root).
    Sampling costs the server some CPU, so a profiled run's figures are a little lower."""
    where = os.environ.get("BENCH_LOCK_PROFILE")
    if not where or not wanted:
        yield
        return
    async with flame_graph(pid, Path(where) / f"lock-{name}.svg", subprocesses=True):
        yield


def _ids(first: int, count: int) -> list[str]:
    return [f"{PREFIX}-{n}" for n in range(first, first + count)]


async def _burst(
    client: Process, server_pid: int, result: Burst, url: str, machines: list[str], named: bool
) -> dict[str, Any]:
    server0, client0 = tree_cpu(server_pid), cpu_seconds(client.pid)
    done = await client.ask({"op": "burst", "url": url, "machines": machines, "named": named})
    result.add(done, tree_cpu(server_pid) - server0, cpu_seconds(client.pid) - client0)
    return done


async def _one_stack(kind: str, plan: Plan, workdir: Path) -> StackResult:
    result = StackResult(kind)
    one_slot, six_slot = _ids(1, plan.shoppers), _ids(plan.shoppers + 1, plan.shoppers)
    async with _stack(kind, workdir, plan) as (url, device_port, settings):
        floor_port = free_port()
        floor_cfg = {"database_url": _async_url(url), "port": floor_port}
        client_cfg = {"database_url": _async_url(url), "seed": 1}
        creds = str(workdir / "machines.json")
        fleet_cfg = {
            "host": "127.0.0.1",
            "port": device_port,
            "credentials": creds,
            "spread_s": 0.0,
            "flash_dir": str(workdir / "flash"),
        }
        floor_url = f"http://127.0.0.1:{floor_port}/floor"
        async with (
            Process("floor", floor_cfg, workdir) as floor,
            Process("client", client_cfg, workdir) as client,
        ):
            assert floor.proc is not None
            await wait_listening(floor.proc, "127.0.0.1", floor_port)
            for count in (1, plan.many_workers) if kind == "postgres" else (1,):
                (workdir / f"w{count}").mkdir(exist_ok=True)
                env = {**settings, "var_dir": str(workdir / f"w{count}" / "var")}
                async with (
                    serve_workers(count, env, workdir / f"w{count}", START_TIMEOUT_S) as srv,
                    workers("fleet", [fleet_cfg], workdir),
                ):
                    await _online(url, 2 * plan.shoppers)
                    say(f"lock [{result.label}, {count} worker(s)]: machines online")
                    lock_url = f"{srv.url}/api"
                    server = srv.process.pid
                    warm = _ids(1, min(20, plan.shoppers))
                    await client.ask(
                        {"op": "burst", "url": lock_url, "machines": warm, "named": True}
                    )
                    await client.ask(
                        {"op": "burst", "url": floor_url, "machines": warm, "named": True}
                    )
                    kinds = (
                        [
                            ("floor", floor.pid, floor_url, one_slot, True),
                            ("named", server, lock_url, one_slot, True),
                            ("code-only", server, lock_url, one_slot, False),
                            ("six-slot", server, lock_url, six_slot, True),
                        ]
                        if count == 1
                        else [(f"named-{count}", server, lock_url, one_slot, True)]
                    )
                    for round_ in range(plan.rounds):
                        for name, pid, target, machines, named in kinds:
                            profiled = round_ == 0 and count == 1 and name != "floor"
                            async with _profiling(server, f"{kind}-{name}", profiled):
                                b = result.burst(name)
                                await _burst(client, pid, b, target, machines, named)
                    for name, b in result.bursts.items():
                        say(f"lock [{result.label}] {name}: {b.rate:,.0f}/s; {b.answers()}")
                    if count == 1:
                        server0, client0 = tree_cpu(server), cpu_seconds(client.pid)
                        done = await client.ask(
                            {
                                "op": "steady",
                                "url": lock_url,
                                "machines": one_slot,
                                "rate": plan.steady_rate,
                                "seconds": plan.steady_s,
                            }
                        )
                        result.steady_asked = int(done["asked"])
                        result.steady.add(
                            done, tree_cpu(server) - server0, cpu_seconds(client.pid) - client0
                        )
                        say(
                            f"lock [{result.label}] steady: p99 "
                            f"{result.steady.latency.p99:.1f} ms; {result.steady.answers()}"
                        )
    return result


async def run(quick: bool, workdir: Path) -> Section:
    plan = Plan.quick() if quick else Plan()
    results = []
    for kind in ("embedded", "postgres"):
        (workdir / kind).mkdir(parents=True, exist_ok=True)
        results.append(await _one_stack(kind, plan, workdir / kind))
    return section(plan, results)


# ---------------------------------------------------------------------------- the report


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def section(plan: Plan, results: list[StackResult]) -> Section:
    table = Table(["", *(r.label for r in results)])

    def row(what: str, cell: Any) -> None:
        table.add(what, *(cell(r) for r in results))

    def burst_rows(name: str, what: str) -> None:
        row(
            f"{what}: rate, p50 / p99",
            lambda r: (
                f"{r.burst(name).rate:,.0f}/s, {ms(r.burst(name).latency.p50)} / "
                f"{ms(r.burst(name).latency.p99)}"
                if r.burst(name).locks
                else "not run"
            ),
        )

    burst_rows("floor", "**floor** (one `UPDATE` a request)")
    burst_rows("named", "**lock-by-code, with `machine_id`**, 1 worker")
    row(
        "... / floor: rate, p99",
        lambda r: (
            f"{_ratio(r.burst('named').rate, r.burst('floor').rate):.2f} x, "
            f"{_ratio(r.burst('named').latency.p99, r.burst('floor').latency.p99):.2f} x"
        ),
    )
    burst_rows("code-only", "lock-by-code, code only, 1 worker")
    row(
        "... / floor: rate, p99",
        lambda r: (
            f"{_ratio(r.burst('code-only').rate, r.burst('floor').rate):.2f} x, "
            f"{_ratio(r.burst('code-only').latency.p99, r.burst('floor').latency.p99):.2f} x"
        ),
    )
    burst_rows("six-slot", f"lock-by-code, with `machine_id`, {SLOTS_WIDE}-slot machines")
    row(
        f"... {SLOTS_WIDE}-slot / one-slot rate",
        lambda r: f"{_ratio(r.burst('six-slot').rate, r.burst('named').rate):.2f} x",
    )
    many = f"named-{plan.many_workers}"
    burst_rows(many, f"lock-by-code, with `machine_id`, {plan.many_workers} workers")
    row(
        f"... {plan.many_workers} workers / 1 worker rate",
        lambda r: (
            f"{_ratio(r.burst(many).rate, r.burst('named').rate):.2f} x"
            if r.burst(many).locks
            else "not run"
        ),
    )
    for name in ("floor", "named", "code-only", "six-slot", many):
        row(
            f"CPU per request, server / client: {name}",
            lambda r, n=name: (
                f"{r.burst(n).cpu_ms(r.burst(n).server_cpu_s):.2f} ms / "
                f"{r.burst(n).cpu_ms(r.burst(n).client_cpu_s):.2f} ms"
                if r.burst(n).locks
                else "not run"
            ),
        )
    row(
        f"steady, {plan.steady_rate:.0f} locks/s at random for {plan.steady_s:.0f} s: "
        "sent, p50 / p99 / max",
        lambda r: (
            f"{r.steady.locks}, {ms(r.steady.latency.p50)} / {ms(r.steady.latency.p99)} / "
            f"{ms(r.steady.latency.max)}"
        ),
    )
    row(
        "... CPU per request, server / client",
        lambda r: (
            f"{r.steady.cpu_ms(r.steady.server_cpu_s):.2f} ms / "
            f"{r.steady.cpu_ms(r.steady.client_cpu_s):.2f} ms"
        ),
    )
    for name in ("named", "code-only", "six-slot", many):
        row(
            f"answers: {name}",
            lambda r, n=name: r.burst(n).answers() if r.burst(n).locks else "not run",
        )
    row("answers: steady", lambda r: r.steady.answers())
    targets = []
    cores = os.cpu_count() or 1
    for r in results:
        floor, named = r.burst("floor"), r.burst("named")
        rate_ratio = _ratio(named.rate, floor.rate)
        p99_ratio = _ratio(named.latency.p99, floor.latency.p99)
        lock_cpu, floor_cpu = named.cpu_ms(named.server_cpu_s), floor.cpu_ms(floor.server_cpu_s)
        cost = (
            f"Each lock-by-code request (with its share of the unlock) cost the server "
            f"{lock_cpu:.2f} ms of CPU against the floor's {floor_cpu:.2f} ms "
            f"({_ratio(lock_cpu, floor_cpu):.1f} x), so one core caps it near "
            f"{1000 / lock_cpu / 2:,.0f} shoppers/s; the floor's rate is bounded by the "
            "host's cores, which the client, the fleet and the database share (profile below)."
        )
        steady_cpu = r.steady.cpu_ms(r.steady.server_cpu_s)
        targets += [
            Target(
                f"lock-by-code burst of {plan.shoppers} / floor, 1 worker, {r.label}",
                f">= {FLOOR_RATIO} x",
                f"{rate_ratio:.2f} x ({named.rate:,.0f} vs {floor.rate:,.0f} requests/s)",
                rate_ratio >= FLOOR_RATIO,
                cost,
            ),
            Target(
                f"lock-by-code p99 / floor p99, 1 worker, {r.label}",
                f"<= {FLOOR_P99_RATIO} x",
                f"{p99_ratio:.2f} x ({ms(named.latency.p99)} vs {ms(floor.latency.p99)})",
                p99_ratio <= FLOOR_P99_RATIO,
                "In a burst the last shopper waits for everyone before them: p99 follows "
                "the rate. " + cost,
            ),
            Target(
                f"lock-by-code steady {plan.steady_rate:.0f}/s p99, 1 worker, {r.label}",
                f"<= {STEADY_P99_MS:.0f} ms",
                ms(r.steady.latency.p99),
                r.steady.latency.p99 <= STEADY_P99_MS,
                f"A lock and its unlock cost the server {2 * steady_cpu:.1f} ms of CPU here: "
                f"{plan.steady_rate:.0f} a second need "
                f"{2 * steady_cpu * plan.steady_rate / 1000:.0%} of one core, on a host of "
                f"{cores} shared with the rest; past what the server keeps up with, arrivals "
                "queue and the tail grows with the run.",
            ),
        ]
        wide = r.burst("six-slot")
        wide_ratio = _ratio(wide.rate, named.rate)
        targets.append(
            Target(
                f"lock-by-code {SLOTS_WIDE}-slot / one-slot machines, {r.label}",
                f"within {SLOTS_WITHIN:.0%}",
                f"{wide_ratio:.2f} x",
                abs(wide_ratio - 1) <= SLOTS_WITHIN,
                f"Server CPU per request: {wide.cpu_ms(wide.server_cpu_s):.2f} ms on "
                f"{SLOTS_WIDE}-slot machines, {lock_cpu:.2f} ms on one-slot ones.",
            )
        )
        if r.burst(many).locks:
            more = r.burst(many)
            more_ratio = _ratio(more.rate, named.rate)
            targets.append(
                Target(
                    f"lock-by-code {plan.many_workers} workers / 1 worker, {r.label}",
                    f">= {WORKERS_RATIO} x",
                    f"{more_ratio:.2f} x ({more.rate:,.0f} vs {named.rate:,.0f} requests/s)",
                    more_ratio >= WORKERS_RATIO,
                    f"Server CPU per request {more.cpu_ms(more.server_cpu_s):.2f} ms with "
                    f"{plan.many_workers} workers, {lock_cpu:.2f} ms with one: more workers "
                    f"add processes, not cores, and this host has {cores}, shared with "
                    "PostgreSQL, Mosquitto, the fleet and the client.",
                )
            )
    intro = (
        f"A burst is {plan.shoppers} shoppers pressing at once (one client process speaking "
        "HTTP/1.1 over plain asyncio streams, a new connection per shopper, as phones do), "
        "each locking its own machine and then letting it go; the rate "
        "counts lock answers over the time until the last one came back, p50 / p99 are the "
        "lock requests'. Kinds run interleaved, "
        f"{plan.rounds} bursts each, in one run: the **floor** (a bare Starlette + uvicorn "
        "app, one route doing one indexed `UPDATE` per request through `api.infra.db`, the "
        "server's own engine settings, so the same driver and pool) gets the same two "
        "requests per shopper; lock-by-code goes to `smartvend serve` (its own process "
        "tree) with every machine connected through the stack's broker (the simulated "
        "fleet in its own process). Lock-by-code is sent as the machine's page sends it "
        f"(with `machine_id`) and by the code alone, on one-slot machines and on "
        f"{SLOTS_WIDE}-slot ones. On PostgreSQL, the server runs again with "
        f"{plan.many_workers} workers. Steady: locks (each followed by its unlock) "
        f"arriving at random (Poisson) at {plan.steady_rate:.0f}/s for {plan.steady_s:.0f} "
        "s. CPU is read from /proc: the server's process tree (workers, and on SQLite the "
        "embedded broker) or the floor's process, and the client's, per request (locks and "
        "unlocks)."
    )
    return Section(TITLE, intro, [table], targets, list(NOTES))


# ---------------------------------------------------------------------------- in the processes


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def _commands() -> AsyncIterator[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield json.loads(line)


def floor_main(cfg: dict[str, Any]) -> None:
    """The floor: Starlette + uvicorn, one indexed UPDATE per request."""
    import uvicorn
    from sqlalchemy import Column, Integer, MetaData, String, Table, update
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from api.infra.db import create_engine, session_factory
    from api.server.serve import edge_options

    floor = Table(
        "bench_floor",
        MetaData(),
        Column("id", String(32), primary_key=True),
        Column("n", Integer, nullable=False),
    )
    engine = create_engine(cfg["database_url"])
    db = session_factory(engine)

    async def bump(mid: str) -> int:
        async with db.begin() as s:
            await s.execute(update(floor).where(floor.c.id == mid).values(n=floor.c.n + 1))
        return 1

    async def lock(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"machine_id": body["machine_id"], "n": await bump(body["machine_id"])})

    async def unlock(request: Request) -> JSONResponse:
        await request.json()
        await bump(request.path_params["mid"])
        return JSONResponse({"unlocked": True})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(floor.metadata.create_all)
            await conn.execute(floor.delete())
            await conn.execute(
                floor.insert(), [{"id": f"{PREFIX}-{n}", "n": 0} for n in range(1, 2001)]
            )
        emit("ready")
        yield
        await engine.dispose()

    app = Starlette(
        routes=[
            Route("/floor/lock-by-code", lock, methods=["POST"]),
            Route("/floor/machine/{mid}/unlock", unlock, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    loop = edge_options()["loop"]  # the server's event loop, so the two compare alike
    uvicorn.run(app, host="127.0.0.1", port=int(cfg["port"]), log_level="warning", loop=loop)


class Phone:
    """One shopper's HTTP/1.1 connection: a few lines of asyncio instead of an HTTP
    library, so that the client's own CPU weighs as little as it can in the figures."""

    def __init__(self, base: str) -> None:
        url = httpx.URL(base)
        self.host, self.port, self.prefix = url.host, url.port or 80, url.path.rstrip("/")
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        data = json.dumps(body).encode()
        writer.write(
            f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        try:
            status = int((await reader.readline()).split()[1])
            length, closing = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    closing = True
            answer = json.loads(await reader.readexactly(length)) if length else {}
        except BaseException:
            self.close()
            raise
        if closing:
            self.close()
        return status, answer

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def client_main(cfg: dict[str, Any]) -> None:
    """The shoppers: bursts and steady arrivals, on commands from stdin."""
    from api.infra.db import create_engine, session_factory

    engine = create_engine(cfg["database_url"])
    db = session_factory(engine)
    rng = random.Random(int(cfg["seed"]))
    serial = 0

    async def codes(machines: list[str]) -> dict[str, str]:
        """What the machines' displays show now."""
        async with db() as s:
            rows = await s.execute(
                select(Machine.id, Machine.display_code).where(Machine.id.in_(machines))
            )
            return {mid: str(code) for mid, code in rows.all() if code is not None}

    async def shop(base: str, mid: str, code: str, named: bool, out: dict[str, Any]) -> None:
        nonlocal serial
        serial += 1
        client_id = f"bench-lock-{serial:08d}"
        body: dict[str, Any] = {"code": code, "client_id": client_id}
        if named:
            body["machine_id"] = mid
        phone = Phone(base)
        try:
            await _shop(phone, mid, client_id, body, out)
        finally:
            phone.close()

    async def _shop(
        phone: Phone, mid: str, client_id: str, body: dict[str, Any], out: dict[str, Any]
    ) -> None:
        t0 = time.perf_counter()
        status, answer = 0, dict[str, Any]()
        try:
            async with asyncio.timeout(120):
                status, answer = await phone.post("/lock-by-code", body)
            key = str(status)
        except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            key = type(exc).__name__
        out["latencies"].append(time.perf_counter() - t0)
        out["last"] = time.perf_counter()
        out["statuses"][key] = out["statuses"].get(key, 0) + 1
        if status != 200:
            return
        unlock = {"client_id": client_id, "session_id": answer.get("session_id", "")}
        for attempt in range(3):  # a broken connection: the shopper presses again
            try:
                async with asyncio.timeout(120):
                    status, _ = await phone.post(f"/machine/{mid}/unlock", unlock)
                key = str(status) + (" (pressed again)" if attempt else "")
                break
            except (
                OSError,
                TimeoutError,
                ValueError,
                IndexError,
                asyncio.IncompleteReadError,
            ) as exc:
                key = type(exc).__name__
        out["unlocks"][key] = out["unlocks"].get(key, 0) + 1

    async def steady(
        base: str, shown: dict[str, str], command: dict[str, Any], out: dict[str, Any]
    ) -> int:
        """Locks arriving at random at ``rate`` a second, each on a machine not in use."""
        free = list(command["machines"])
        busy: set[asyncio.Task[None]] = set()
        rate, until = float(command["rate"]), time.perf_counter() + float(command["seconds"])
        asked = 0

        async def one(mid: str) -> None:
            if mid not in shown:  # still locked by an earlier shopper whose unlock failed
                shown.update(await codes([mid]))
            if mid in shown:
                await shop(base, mid, shown[mid], True, out)
                shown.update(await codes([mid]))  # the next shopper reads the new code
            free.append(mid)

        at = time.perf_counter()
        while (at := at + rng.expovariate(rate)) <= until:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            if not free:
                out["statuses"]["no free machine"] = out["statuses"].get("no free machine", 0) + 1
                continue
            asked += 1
            task = asyncio.create_task(one(free.pop(rng.randrange(len(free)))))
            busy.add(task)
            task.add_done_callback(busy.discard)
        await asyncio.gather(*busy)
        return asked

    def fresh() -> dict[str, Any]:
        return {"latencies": [], "statuses": {}, "unlocks": {}, "last": 0.0}

    emit("ready")
    async for command in _commands():
        machines: list[str] = command["machines"]
        base = command["url"]
        floor = "floor" in base
        shown = {} if floor else await codes(machines)
        out = fresh()
        started = time.perf_counter()
        if command["op"] == "burst":
            targets = [m for m in machines if floor or m in shown]
            if len(targets) < len(machines):  # locks an earlier burst could not end
                out["statuses"]["no code shown"] = len(machines) - len(targets)
            await asyncio.gather(
                *(shop(base, m, shown.get(m, ""), command["named"], out) for m in targets)
            )
            out["seconds"] = out["last"] - started
            out["asked"] = len(machines)
        else:
            out["asked"] = await steady(base, shown, command, out)
            out["seconds"] = time.perf_counter() - started
        del out["last"]
        emit("done", **out)
    await engine.dispose()


def main() -> None:
    role, path = sys.argv[1], sys.argv[2]
    cfg = json.loads(Path(path).read_text())
    if role == "floor":
        floor_main(cfg)
    else:
        asyncio.run(client_main(cfg))


if __name__ == "__main__":
    main()

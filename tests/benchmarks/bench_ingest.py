"""Ingestion on the running server, both stacks: does the bridge keep up with the broker?

Publisher processes hold machines that publish telemetry (QoS0) and events (QoS1),
alternating, each as fast as its previous publish returns. The server's own bridge
receives them (fan-in: the broker's delivery to the server's one subscription) and
applies them in batches (ingestion). Both rates come from the same run: the fan-in
rate counts messages as they reach the bridge, the ingestion rate counts them as
their transaction commits. Server CPU is read from /proc for the server process
(uvicorn, the API, the bridge and, on the embedded stack, the broker); on the
PostgreSQL stack, PostgreSQL's and Mosquitto's processes are shown separately.
"""

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from api.mqtt.ingest import Ingest
from device.simulate import load_credentials
from schema.models import DeviceEvent, Telemetry
from tests.benchmarks import device_load
from tests.benchmarks.measure import _processes, cpu_seconds, say, tree_cpu
from tests.benchmarks.procs import workers
from tests.benchmarks.report import Section, Table, Target, rate
from tests.benchmarks.stacks import STACKS, BenchStack

TARGET_RATIO = 0.8
TARGET_CPU_MS = 150.0
HELPER_MARKERS = ("smartvend-pg-", "smartvend-bench-mosquitto-")


@dataclass(frozen=True)
class Plan:
    machines: int
    processes: int
    each: int  # messages per machine

    @classmethod
    def for_mode(cls, quick: bool) -> "Plan":
        return cls(40, 1, 50) if quick else cls(200, 2, 100)

    @property
    def sent(self) -> int:
        return self.machines * self.each


@dataclass
class IngestResult:
    label: str
    sent: int = 0
    received: int = 0
    applied: int = 0
    rows: int = 0
    batches: int = 0
    fan_in_s: float = float("nan")
    ingest_s: float = float("nan")
    server_cpu_s: float = 0.0
    helpers_cpu_s: float = 0.0

    @property
    def fan_in_rate(self) -> float:
        return self.received / self.fan_in_s if self.fan_in_s > 0 else 0.0

    @property
    def ingest_rate(self) -> float:
        return self.applied / self.ingest_s if self.ingest_s > 0 else 0.0

    @property
    def ratio(self) -> float:
        return self.ingest_rate / self.fan_in_rate if self.fan_in_rate else 0.0

    def cpu_ms_per_1000(self, seconds: float) -> float:
        return seconds * 1000 / max(1, self.applied) * 1000


def helpers_cpu() -> float:
    """CPU seconds so far of the stack's PostgreSQL and Mosquitto (and their children)."""
    procs = _processes()
    marked = {pid for pid, (_, _, cmd) in procs.items() if any(m in cmd for m in HELPER_MARKERS)}
    return tree_cpu(*marked)


class Arrivals:
    """Counts device messages as they reach the bridge (wraps ``Ingest.put``)."""

    def __init__(self, ingest: Ingest) -> None:
        self._put = ingest.put
        self.count = 0
        self.last = 0.0
        ingest.put = self.put  # type: ignore[method-assign]

    async def put(self, topic: str, payload: bytes) -> None:
        kind = topic.rsplit("/", 1)[-1]
        if kind in device_load.KINDS:
            self.count += 1
            self.last = time.perf_counter()
        await self._put(topic, payload)


async def _rows(bench: BenchStack) -> int:
    async with bench.services.ctx.db() as s:
        telemetry = await s.scalar(select(func.count()).select_from(Telemetry))
        events = await s.scalar(select(func.count()).select_from(DeviceEvent))
    return int(telemetry or 0) + int(events or 0)


async def measure(bench: BenchStack, plan: Plan, workdir: Path) -> IngestResult:
    result = IngestResult(bench.label, sent=plan.sent)
    machines = [list(m) for m in load_credentials(str(bench.credentials))[: plan.machines]]
    parts = [machines[i :: plan.processes] for i in range(plan.processes)]
    cfgs = [
        {
            "host": bench.mqtt_host,
            "port": bench.mqtt_port,
            "machines": p,
            "kinds": ["telemetry", "events"],
        }
        for p in parts
    ]
    ingest = bench.bridge.ingest
    arrivals = Arrivals(ingest)
    async with workers("publish", cfgs, workdir) as publishers:
        await asyncio.gather(*(w.expect("ready", 300) for w in publishers))
        rows_before = await _rows(bench)
        await ingest.join()
        applied_before, batches_before = ingest.stats.applied, ingest.stats.batches
        arrived_before = arrivals.count
        cpu_before, helpers_before = cpu_seconds(os.getpid()), helpers_cpu()
        say(f"ingest [{bench.label}]: {plan.sent:,} device messages from {plan.machines} machines")
        started = time.perf_counter()
        for worker in publishers:
            worker.send(f"go {plan.each}")
        done = asyncio.gather(*(w.expect("done", 600) for w in publishers))

        async def applied() -> int:
            return ingest.stats.applied - applied_before

        last_applied = started
        seen = 0
        while seen < plan.sent:
            now = await applied()
            if now != seen:
                seen, last_applied = now, time.perf_counter()
            elif time.perf_counter() - last_applied > device_load.STALL_S and done.done():
                break
            await asyncio.sleep(0.02)
        await done
        await ingest.join()
        result.server_cpu_s = cpu_seconds(os.getpid()) - cpu_before
        result.helpers_cpu_s = helpers_cpu() - helpers_before
        result.applied = await applied()
        result.received = arrivals.count - arrived_before
        result.batches = ingest.stats.batches - batches_before
        result.fan_in_s = arrivals.last - started
        result.ingest_s = last_applied - started
        result.rows = await _rows(bench) - rows_before
    say(
        f"ingest [{bench.label}]: fan-in {result.fan_in_rate:,.0f} msg/s, ingestion "
        f"{result.ingest_rate:,.0f} msg/s (ratio {result.ratio:.2f}), "
        f"{result.cpu_ms_per_1000(result.server_cpu_s):.0f} ms server CPU per 1,000"
    )
    return result


async def run(quick: bool, workdir: Path) -> Section:
    plan = Plan.for_mode(quick)
    results = []
    for kind, opened in STACKS.items():
        (workdir / kind).mkdir(parents=True, exist_ok=True)
        async with opened(workdir / kind, plan.machines) as bench:
            results.append(await measure(bench, plan, workdir / kind))
            say(f"stopping the {bench.label} stack")
    return section(results, plan)


def section(results: list[IngestResult], plan: Plan) -> Section:
    table = Table(["", *(r.label for r in results)])
    table.add("device messages sent", *(f"{r.sent:,}" for r in results))
    table.add("received by the bridge (fan-in)", *(rate(r.fan_in_rate, "msg/s") for r in results))
    table.add("applied by the server (ingestion)", *(rate(r.ingest_rate, "msg/s") for r in results))
    table.add("**ingestion / fan-in**", *(f"{r.ratio:.2f}" for r in results))
    table.add(
        "received by the bridge / sent",
        *(f"{r.received:,} / {r.sent:,}" for r in results),
    )
    table.add(
        "rows written / messages received",
        *(f"{r.rows:,} / {r.received:,}" for r in results),
    )
    table.add(
        "transactions (batches), messages each",
        *(f"{r.batches:,}, {r.applied / max(1, r.batches):.0f}" for r in results),
    )
    table.add(
        "**server CPU per 1,000 ingested messages**",
        *(f"{r.cpu_ms_per_1000(r.server_cpu_s):.0f} ms" for r in results),
    )
    table.add(
        "... PostgreSQL and Mosquitto CPU per 1,000 (own processes)",
        *(
            f"{r.cpu_ms_per_1000(r.helpers_cpu_s):.0f} ms" if r.helpers_cpu_s else "(in the server)"
            for r in results
        ),
    )
    out = Section(
        "Ingestion: the server against its broker",
        f"{plan.machines} machines in {plan.processes} publisher processes, {plan.each} "
        f"messages each (telemetry QoS0 and events QoS1, alternating, each as fast as the "
        f"previous publish returns), into the whole running server of each stack. "
        + (__doc__ or "").split("\n\n", 1)[1].replace("\n", " ").strip(),
        [table],
    )
    for r in results:
        out.targets.append(
            Target(
                f"ingestion / fan-in, {r.label}",
                f">= {TARGET_RATIO}",
                f"{r.ratio:.2f} ({r.ingest_rate:,.0f} / {r.fan_in_rate:,.0f} msg/s)",
                r.ratio >= TARGET_RATIO and r.received >= r.sent,
                (
                    f"The broker dropped {r.sent - r.received:,} of {r.sent:,} messages "
                    f"before they reached the server (its queue for a subscriber that falls "
                    f"behind is full). "
                    if r.received < r.sent
                    else ""
                )
                + f"The bridge applied {r.applied:,} messages in {r.batches:,} transactions "
                f"({r.applied / max(1, r.batches):.0f} each) while receiving them at "
                f"{r.fan_in_rate:,.0f} msg/s; both run on the server's one event loop"
                + (", together with the embedded broker," if "embedded" in r.label else "")
                + " on two cores shared with the publishers and the rest of the host.",
            )
        )
        cpu = r.cpu_ms_per_1000(r.server_cpu_s)
        out.targets.append(
            Target(
                f"server CPU per 1,000 ingested messages, {r.label}",
                f"<= {TARGET_CPU_MS:.0f} ms",
                f"{cpu:.0f} ms",
                cpu <= TARGET_CPU_MS,
                (
                    "The server process here also runs the embedded broker, which receives "
                    "every publish from the machines and delivers it to the bridge (see the "
                    "broker section for its CPU per 1,000 fanned-in messages alone); the "
                    "rest is the MQTT client's parsing, decoding and validating each payload "
                    "and the batch's statements."
                    if "embedded" in r.label
                    else "Per message: the MQTT client's parsing of the PUBLISH (and its "
                    "PUBACK for events), decoding and validating the JSON payload, and its "
                    "share of the batch's statements; PostgreSQL's own work is the row "
                    "below."
                ),
            )
        )
    return out

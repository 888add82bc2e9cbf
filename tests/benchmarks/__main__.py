"""Run every benchmark and write docs/performance.md.

    python -m tests.benchmarks            # the full run (about 20 minutes on 2 cores)
    python -m tests.benchmarks --quick    # a small smoke run, written to var/
    python -m tests.benchmarks --only broker,vend
    python -m tests.benchmarks --only ingest,vend --output var/performance-partial.md
    python -m tests.benchmarks --only scale --output docs/performance.md   # merged in
    python -m tests.benchmarks --only scale --scale-machines 2000 --scale-burst-s 20
    python -m tests.benchmarks --only lock --output docs/performance.md    # lock-by-code alone
    python -m tests.benchmarks moonshot      # the moonshot alone, merged into docs/performance.md
    python -m tests.benchmarks moonshot --moon-machines 50000 --moon-edges 3

``--output`` naming an existing report while ``--only`` leaves parts out replaces
(or adds) only the sections that ran, and their rows of the targets table.

Progress goes to stderr while it runs. Everything listens on free loopback ports and
is stopped at the end; nothing here touches the machine's own services.
"""

import argparse
import asyncio
import dataclasses
import logging
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks import (
    bench_broker,
    bench_fleet,
    bench_ingest,
    bench_lock,
    bench_rollout,
    bench_scale,
    bench_sqlite,
    bench_vend,
    moonshot,
)
from tests.benchmarks.measure import (
    ForeignLoad,
    load_average,
    machine_info,
    raise_open_files_limit,
    say,
)
from tests.benchmarks.report import Section, merge, render
from tests.benchmarks.stacks import STACKS

ROOT = Path(__file__).resolve().parents[2]
FULL_OUTPUT = ROOT / "docs" / "performance.md"
QUICK_OUTPUT = ROOT / "var" / "performance-quick.md"
PARTS = ("broker", "sqlite", "ingest", "vend", "lock", "scale", "rollout", "moonshot")
MOON_OPTIONS = {  # --moon-NAME: MoonPlan field, type
    "machines": int,
    "edges": int,
    "workers": int,
    "telemetry-s": float,
    "steady-s": float,
    "purchases": int,
}
SCALE_OPTIONS = {  # --scale-NAME: ScalePlan field, type
    "machines": int,
    "processes": int,
    "purchases": int,
    "rate": float,
    "burst-s": float,
    "telemetry-s": float,
    "workers": str,
}
SCALE_FIELDS = {"rate": "burst_rate", "burst-s": "burst_s", "telemetry-s": "telemetry_s"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument(
        "parts", nargs="*", help="sections to run alone (like --only), e.g. moonshot"
    )
    parser.add_argument("--quick", action="store_true", help="small counts, a couple of minutes")
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help="comma-separated: broker, sqlite, ingest, vend (vend includes the fleet), lock, "
        "scale, rollout, moonshot",
    )
    for name, kind in MOON_OPTIONS.items():
        parser.add_argument(
            f"--moon-{name}",
            type=kind,
            dest="moon_" + name.replace("-", "_"),
            help=f"moonshot: {name}",
        )
    parser.add_argument("--output", type=Path, help="where to write the report")
    for name, kind in SCALE_OPTIONS.items():
        parser.add_argument(
            f"--scale-{name}",
            type=kind,
            dest="scale_" + SCALE_FIELDS.get(name, name).replace("-", "_"),
            help=f"scale-out section: {name} (default: the issue's value"
            + ("; workers as a list like 1,2)" if name == "workers" else ")"),
        )
    return parser.parse_args(argv)


def scale_plan(args: argparse.Namespace) -> bench_scale.ScalePlan:
    if args.quick:
        return bench_scale.ScalePlan.quick()
    options = {k[len("scale_") :]: v for k, v in vars(args).items() if k.startswith("scale_")}
    return bench_scale.plan_from(options)


def moon_plan(args: argparse.Namespace) -> moonshot.MoonPlan:
    base = moonshot.MoonPlan.quick() if args.quick else moonshot.MoonPlan()
    options = {k[len("moon_") :]: v for k, v in vars(args).items() if k.startswith("moon_") and v}
    return dataclasses.replace(base, **options)


async def vend_and_fleet(quick: bool, workdir: Path) -> list[Section]:
    machines, purchases, warmup, shoppers = (100, 50, 5, 20) if quick else (1000, 500, 10, 200)
    pages, window_s = (50, 3.0) if quick else (500, 10.0)
    fleets: list[bench_fleet.FleetResult] = []
    vends: list[bench_vend.VendResult] = []
    for kind, opened in STACKS.items():
        async with opened(workdir / kind, machines) as bench:
            six = bench_vend.six_slot_ids(bench, purchases, warmup)
            await bench_vend.planograms(bench, six)
            slot_counts = dict.fromkeys(six, len(bench_vend.SLOT_IDS))
            async with bench_fleet.online_fleet(
                bench, workdir, spread_s=0.0, slot_counts=slot_counts
            ) as (_, storm):
                fleets.append(storm)
            result = bench_vend.VendResult(kind, bench.label, machines)
            vends.append(result)
            await bench_fleet.all_offline(bench)
            say(
                f"vend [{bench.label}]: the fleet again, connects spread over "
                f"{bench_vend.SPREAD_S:.0f} s"
            )
            async with bench_fleet.online_fleet(
                bench, workdir, spread_s=bench_vend.SPREAD_S, slot_counts=slot_counts
            ) as (_, steady):
                if steady.online < machines:
                    say(f"vend [{bench.label}]: skipped, the fleet did not come online")
                    continue
                await bench_vend.purchases(bench, purchases, warmup, result, set(six))
                await bench_vend.idle_pages(bench, pages, window_s, workdir, result, set(six))
                await bench_vend.lock_rate(bench, shoppers, workdir, result)
            say(f"stopping the {bench.label} stack")
    return [bench_fleet.section(fleets), bench_vend.section(vends, purchases)]


async def run(
    parts: list[str],
    quick: bool,
    workdir: Path,
    plan: bench_scale.ScalePlan,
    moon: moonshot.MoonPlan,
) -> list[Section]:
    foreign = ForeignLoad()
    foreign.start()
    cores = os.cpu_count() or 1
    sections: list[Section] = []
    for part in PARTS:
        if part not in parts:
            continue
        started, before = time.monotonic(), foreign.seconds
        if part == "broker":
            found = [await bench_broker.run(quick, workdir / "broker")]
        elif part == "sqlite":
            found = [await bench_sqlite.run(quick, workdir)]
        elif part == "ingest":
            found = [await bench_ingest.run(quick, workdir / "ingest")]
        elif part == "scale":
            found = [await bench_scale.run(plan, workdir / "scale")]
        elif part == "rollout":
            found = [await bench_rollout.run(quick, workdir / "rollout")]
        elif part == "lock":
            found = [await bench_lock.run(quick, workdir / "lock")]
        elif part == "moonshot":
            found = [await moonshot.run(moon, workdir / "moonshot")]
        else:
            found = await vend_and_fleet(quick, workdir / "vend")
        share = (foreign.seconds - before) / ((time.monotonic() - started) * cores)
        found[-1].notes.append(
            f"While this ran, other processes on the host used {share:.0%} of its CPU "
            f"(sampled every second from /proc)."
        )
        sections += found
    await foreign.stop()
    return sections


def _workdirs(root: Path) -> None:
    for name in (
        "broker",
        "sqlite",
        "ingest",
        "scale",
        "rollout",
        "lock",
        "moonshot",
        *(f"vend/{kind}" for kind in STACKS),
    ):
        (root / name).mkdir(parents=True)


def main(argv: list[str]) -> None:
    args = parse(argv)
    chosen = ",".join(args.parts) if args.parts else args.only
    parts = [p.strip() for p in chosen.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    logging.basicConfig(level=logging.WARNING, format="    %(levelname)s %(name)s: %(message)s")
    # aiomqtt warns whenever more than ten publishes are in flight: the load we create.
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    limit = raise_open_files_limit()
    machine = machine_info()
    say(f"open files limit {limit}; machine: {machine}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smartvend-bench-") as tmp:
        _workdirs(Path(tmp))
        sections = asyncio.run(run(parts, args.quick, Path(tmp), scale_plan(args), moon_plan(args)))
    machine["Load average at the end"] = load_average()
    output = args.output or (QUICK_OUTPUT if args.quick else FULL_OUTPUT)
    output.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "-m", "tests.benchmarks", *argv])
    mode = "quick smoke run" if args.quick else "full run"
    seconds = time.monotonic() - started
    if set(parts) != set(PARTS) and output.exists():
        note = (
            f"Run: {machine['Date']}, {mode} (`{command}`), {seconds / 60:.1f} min; load "
            f"average {machine['Load average at the start']} at the start, "
            f"{machine['Load average at the end']} at the end; "
            f"{machine['Cores']} cores ({machine['CPU']})."
        )
        output.write_text(merge(output.read_text(), sections, note))
    else:
        output.write_text(render(machine, mode, command, sections, seconds))
    say(f"wrote {output}")


if __name__ == "__main__":
    main(sys.argv[1:])

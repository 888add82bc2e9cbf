"""The benchmarks' own measures: CPU of a process tree, the event loop's lateness and
the moonshot's connect phase in fifths. Wrong measures make wrong docs."""

import asyncio
import os
import subprocess
import sys
import time

from tests.benchmarks.measure import LoopLag, cpu_seconds, tree_cpu
from tests.benchmarks.moonshot import GROUPS, fifths

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_a_tree_keeps_the_cpu_of_a_child_that_exited() -> None:
    """A PostgreSQL backend or a worker that ends between two readings must not take its
    CPU out of its tree's sum (it made the moonshot report negative CPU)."""
    me = os.getpid()
    before = tree_cpu(me)
    child = subprocess.Popen([sys.executable, "-c", BURN])
    time.sleep(0.05)
    while child.poll() is None:
        alive = tree_cpu(me)  # the child counted while it runs
        time.sleep(0.05)
    child.wait()  # reaped: its CPU is now in this process's children's time
    after = tree_cpu(me)
    assert alive >= before
    assert after - before >= 0.25  # the child's 0.3 s of CPU, still counted
    assert after - cpu_seconds(me) >= 0.25  # ... as a reaped child, not as this process


async def test_loop_lag_sees_a_callback_that_holds_the_loop() -> None:
    async with LoopLag(period_s=0.002) as lag:
        await asyncio.sleep(0.05)
        held_from = time.perf_counter()
        end = held_from + 0.04
        while time.perf_counter() < end:  # hold the loop for 40 ms
            pass
        held_to = time.perf_counter()
        await asyncio.sleep(0.02)
    assert lag.longest(held_from, held_to + 0.01) >= 0.035
    assert lag.longest(held_from - 0.05, held_from - 0.01) < 0.035  # before it: no stretch
    assert lag.lateness().max >= 0.035 * 1000  # milliseconds


def test_fifths_give_each_fifths_rate_and_cores() -> None:
    """200 machines a second up to 800 of 1,000, then 50 a second; the parts' CPU grows
    at a steady 0.5 cores (server) and 0.1 (each other part)."""
    timeline = [(0.0, 0, dict.fromkeys(GROUPS, 0.0))]
    for second in range(1, 9):
        online = min(200 * second, 800) + 50 * max(0, second - 4)
        spent = {k: second * (0.5 if k == "server" else 0.1) for k in GROUPS}
        timeline.append((float(second), online, spent))
    found = fifths(timeline, 1000)
    assert [round(f.rate) for f in found] == [200, 200, 200, 200, 50]
    assert [round(f.cores["server"], 6) for f in found] == [0.5] * 5
    assert round(found[0].cores["edges"], 6) == 0.1
    assert round(found[0].cpu_ms("server"), 6) == 2.5  # 0.5 cores at 200 machines a second
    assert round(found[-1].cpu_ms("server"), 6) == 10.0  # ... at 50 a second

"""The benchmarks' own measures: CPU of a process tree, the event loop's lateness and
the moonshot's connect phase in fifths. Wrong measures make wrong docs."""

import os
import subprocess
import sys
import time

from tests.benchmarks.measure import LoopLag, cpu_seconds, tree_cpu
from tests.benchmarks.moonshot import GROUPS, fifths

# Burns 0.3 s of CPU, says so, then waits for its stdin to close.
BURN = (
    "import sys, time\n"
    "end = time.process_time() + 0.3\n"
    "while time.process_time() < end: pass\n"
    "print('burnt', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_a_tree_keeps_the_cpu_of_a_child_that_exited() -> None:
    """A PostgreSQL backend or a worker that ends between two readings must not take its
    CPU out of its tree's sum (it made the moonshot report negative CPU)."""
    me = os.getpid()
    before = tree_cpu(me)
    with subprocess.Popen(
        [sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline().strip() == "burnt"
        alive = tree_cpu(me)  # counted while it runs
        child.stdin.close()
        child.wait()  # reaped: its CPU is now in this process's children's time
    after = tree_cpu(me)
    assert alive - before >= 0.25
    assert after >= alive  # its exit took nothing out
    assert after - cpu_seconds(me) >= 0.25  # ... kept as a reaped child's


async def test_loop_lag_sees_a_callback_that_holds_the_loop() -> None:
    async with LoopLag(period_s=0.002) as lag:
        await lag.woken()
        held_from = time.perf_counter()
        end = held_from + 0.04
        while time.perf_counter() < end:  # hold the loop for 40 ms
            pass
        await lag.woken()  # the first wake-up after the hold
    assert lag.longest(held_from, lag.samples[-1][0]) >= 0.035
    assert lag.longest(0.0, held_from) < 0.035  # before it: no such stretch
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

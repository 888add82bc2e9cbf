"""Metrics merged across worker processes (PROMETHEUS_MULTIPROC_DIR), dead ones forgotten."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

# A worker: counts MQTT messages, says it leads, then waits to be killed.
WORKER = """
import sys
from api.observability import metrics
metrics.MQTT_MESSAGES.labels("in", "telemetry").inc(int(sys.argv[1]))
metrics.LEADER.set(int(sys.argv[2]))
print("ready", flush=True)
sys.stdin.read()
"""
SCRAPE = (
    "import sys\nfrom api.observability import metrics\n"
    "sys.stdout.write(metrics.exposition().decode())\n"
)


def run(code: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def scrape(env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", SCRAPE], env=env, capture_output=True, text=True, check=True
    )
    found = {}
    for family in text_string_to_metric_families(done.stdout):
        for sample in family.samples:
            found[sample.name + str(sorted(sample.labels.items()))] = sample.value
    return found


def test_counters_add_up_over_workers_and_a_killed_leader_stops_counting(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    leader = run(WORKER, env, "3", "1")
    other = run(WORKER, env, "4", "0")
    try:
        for proc in (leader, other):
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        found = scrape(env)
        inbound = "smartvend_mqtt_messages_total[('direction', 'in'), ('kind', 'telemetry')]"
        assert found[inbound] == 7
        assert found["smartvend_leader[]"] == 1
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait()
        found = scrape(env)
        assert found[inbound] == 7  # what a dead worker counted stays counted
        assert found["smartvend_leader[]"] == 0  # but it no longer leads
    finally:
        for proc in (leader, other):
            proc.kill()
            proc.communicate()

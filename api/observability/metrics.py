"""What SmartVend measures, as Prometheus metric objects, and their exposition.

The objects are module-level, as ``prometheus_client`` intends: creating one
records nothing and opens nothing. Code that measures imports this module and
calls ``.labels(...).inc()``/``.observe()``; ``exposition()`` renders the text
format for ``GET /metrics``.

With several workers (``smartvend serve --workers N``) each process writes its
values into files under ``PROMETHEUS_MULTIPROC_DIR`` (set by ``serve`` before
the workers start) and any worker's ``/metrics`` merges all of them. Gauges
say how they merge: ``livesum`` adds the living processes (the leader count,
pool connections), ``mostrecent`` keeps the last value written by any of them
(figures read from the database at scrape time).
"""

import contextlib
import glob
import os
import re
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_SECONDS = Histogram(
    "smartvend_http_request_duration_seconds",
    "HTTP request latency by route template (not raw path), method and status",
    ["method", "route", "status"],
    buckets=_FAST,
    registry=REGISTRY,
)
MQTT_MESSAGES = Counter(
    "smartvend_mqtt_messages",
    "MQTT messages the server received (in) or published (out), by topic kind",
    ["direction", "kind"],
    registry=REGISTRY,
)
INGEST_BATCH = Histogram(
    "smartvend_ingest_batch_size",
    "Device messages applied in one database transaction",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    registry=REGISTRY,
)
INGEST_LAG = Histogram(
    "smartvend_ingest_lag_seconds",
    "Time from a device message's arrival to its batch's commit (each batch's oldest message)",
    buckets=_FAST,
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "smartvend_outbox_depth",
    "Outbox rows not yet published (read at scrape time)",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "smartvend_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row, 0 when empty (read at scrape time)",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
VENDS = Gauge(
    "smartvend_vends",
    "Dispense commands by outcome (succeeded, failed, rejected, expired, unknown, or "
    "still pending), from the database at scrape time",
    ["outcome"],
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
REFUNDS = Gauge(
    "smartvend_refunds",
    "Refunds by status, from the database at scrape time",
    ["status"],
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
GATEWAY_SECONDS = Histogram(
    "smartvend_gateway_call_duration_seconds",
    "Payment gateway call latency by operation",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
BROKER_EVENTS = Gauge(
    "smartvend_embedded_broker_events",
    "What the embedded broker dropped or refused since it started, by event (oversize_dropped, "
    "retain_refused, connect_timeouts: silent connections, connects_refused, queue_dropped)",
    ["event"],
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
BROKER_CLIENTS = Gauge(
    "smartvend_embedded_broker_clients",
    "Clients connected to the embedded broker (read at scrape time)",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
ROLLOUT_MACHINES = Gauge(
    "smartvend_rollout_machines",
    "Machines of running or paused rollouts, by their update status",
    ["status"],
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
ROLLOUTS = Gauge(
    "smartvend_rollouts",
    "Firmware rollouts by status",
    ["status"],
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
LEADER = Gauge(
    "smartvend_leader",
    "1 in the worker that runs the singleton work (sum over workers: should be 1)",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL = Gauge(
    "smartvend_db_pool_connections",
    "Database connections of the workers' pools by state (checked_out, open)",
    ["state"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

# The per-process files the library writes: ``{kind}_{mode}_{pid}.db`` for gauges.
_PID_FILE = re.compile(r"_(\d+)\.db$")


def multiprocess_dir() -> Path | None:
    """Where the workers' values live when several processes serve, else None."""
    found = os.environ.get(MULTIPROC_ENV)
    return Path(found) if found else None


def multiprocess_active() -> bool:
    """True when this process writes its values to files (the library decided at import)."""
    return getattr(values.ValueClass, "__name__", "") == "MmapedValue"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def forget_dead_processes(path: Path) -> list[int]:
    """Drop the live gauges of processes that are gone (a worker killed with -9).

    uvicorn's supervisor restarts a dead worker but offers no hook to clean up
    after it, so the exposition does it: otherwise a dead leader would still
    count as one.
    """
    dead: set[int] = set()
    for name in glob.glob(str(path / "gauge_live*_*.db")):
        found = _PID_FILE.search(name)
        if found and not _alive(int(found.group(1))):
            dead.add(int(found.group(1)))
    for pid in dead:
        with contextlib.suppress(FileNotFoundError):
            multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    return sorted(dead)


def exposition() -> bytes:
    """The Prometheus text format: every worker's values, or this process's."""
    path = multiprocess_dir()
    if path is not None and multiprocess_active():
        forget_dead_processes(path)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=str(path))  # type: ignore[no-untyped-call]
        return bytes(generate_latest(merged))
    return bytes(generate_latest(REGISTRY))

"""``smartvend serve --workers N``: N worker processes behind one HTTP port.

uvicorn's own supervisor runs them: it binds the port once, starts N
processes that share the listening socket (the kernel spreads connections),
and starts a new worker when one dies (``kill -9`` included). A worker is a
fresh interpreter, so it is handed an import string: :func:`worker_app` reads
the settings from the environment, as every process of SmartVend does, and
builds the app with the factory the command was given (API only, or with the
pages).

Before starting anything the supervisor refuses settings that cannot work
with several processes (:mod:`api.server.cluster`), points ``prometheus_client`` at a
directory shared by the workers (``PROMETHEUS_MULTIPROC_DIR``; emptied at
start, as the library requires) and tells the workers how many they are.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.importer import import_from_string

from api.observability import metrics
from api.server import cluster
from api.server.serve import configure_logging, edge_options
from api.settings import PREFIX, Settings

# How the supervisor tells each worker which app factory to call (internal).
FACTORY_ENV = PREFIX + "WORKER_APP_FACTORY"
WORKER_APP = "api.server.workers:worker_app"


def factory_path(factory: Callable[..., Any]) -> str:
    """``module:name`` of a module-level factory, checked to import back to it."""
    path = f"{factory.__module__}:{factory.__qualname__}"
    if import_from_string(path) is not factory:
        raise ValueError(f"the app factory {path} is not importable by its name")
    return path


def prepare_metrics_dir(settings: Settings) -> Path:
    """An empty directory for the workers' metric files (the operator's, or var/metrics)."""
    given = os.environ.get(metrics.MULTIPROC_ENV)
    path = Path(given) if given else settings.var_dir / "metrics"
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path.resolve()


def serve_workers(
    factory: Callable[[Settings], Any],
    settings: Settings,
    workers: int,
    *,
    host: str | None = None,
    port: int | None = None,
) -> int:
    """Run ``workers`` processes of ``factory(settings)`` until stopped."""
    cluster.require_cluster_ready(settings, workers)
    configure_logging(settings.log_format)
    settings = settings.with_dev_secret()  # one key for all workers, made before they start
    os.environ[FACTORY_ENV] = factory_path(factory)
    os.environ[PREFIX + "WORKERS"] = str(workers)
    os.environ[metrics.MULTIPROC_ENV] = str(prepare_metrics_dir(settings))
    uvicorn.run(
        WORKER_APP,
        factory=True,
        workers=workers,
        host=host or settings.http_host,
        port=port or settings.http_port,
        log_config=None,
        **edge_options(),
    )
    return 0


def worker_app() -> Any:
    """One worker's app (uvicorn calls this in each worker process)."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_format)
    factory: Callable[[Settings], Any] = import_from_string(os.environ[FACTORY_ENV])
    return factory(settings)

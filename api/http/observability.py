"""``/readyz`` and ``/metrics``: what load balancers and Prometheus ask a worker."""

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.http.deps import runtime
from api.http.errors import error_response
from api.http.source import address_in, parse_networks
from api.observability import metrics, readiness
from api.observability.collectors import read_broker_figures, read_database_figures

log = logging.getLogger(__name__)


async def ready(request: Request) -> Response:
    root = runtime(request)
    mqtt = root.mqtt
    found = await readiness.problems(
        root.engine,
        None if mqtt is None else (lambda: bool(mqtt.connected)),
        None if mqtt is None else (lambda: mqtt.bridge.takeover_suspected),
    )
    if found:
        return JSONResponse({"status": "not ready", "problems": found}, status_code=503)
    return JSONResponse({"status": "ready"})


def metrics_allowed(request: Request) -> bool:
    """``METRICS_ALLOW`` holds the request's source address (after ``TRUSTED_PROXIES``)."""
    allow = parse_networks(runtime(request).settings.metrics_allow, "METRICS_ALLOW")
    return request.client is not None and address_in(request.client.host, allow)


async def metrics_text(request: Request) -> Response:
    if not metrics_allowed(request):  # as if there were no such page
        return error_response(404, "not_found", "Not Found")
    root = runtime(request)
    services = root.services
    try:
        await read_database_figures(services.ctx.db, services.ctx.clock.now())
    except Exception:  # the rest is still worth scraping
        log.exception("reading the database figures for /metrics failed")
    broker = None if root.mqtt is None else root.mqtt.broker
    if broker is not None:  # the embedded one (an external broker has its own metrics)
        read_broker_figures(broker)
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


routes = [
    Route("/readyz", ready, methods=["GET"]),
    Route("/metrics", metrics_text, methods=["GET"]),
]

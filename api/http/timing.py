"""HTTP latency by route template: an ASGI middleware over the app's routes.

The label is the route's path template (``/api/orders/{order_id}``), never the
raw path, so ids do not explode the series; a path no route matches counts as
``unmatched``. Streams (Server-Sent Events) are measured to their end.
"""

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observability import metrics

UNMATCHED = "unmatched"


def route_template(routes: Sequence[BaseRoute], scope: Scope, prefix: str = "") -> str:
    """The template of the first route that fully matches ``scope``."""
    for route in routes:
        match, child = route.matches(scope)
        if match != Match.FULL:
            continue
        if isinstance(route, Mount):
            inner = route_template(route.routes, {**scope, **child}, prefix + route.path)
            return inner if inner != UNMATCHED else prefix + route.path + "/{path}"
        return prefix + str(getattr(route, "path", UNMATCHED))
    return UNMATCHED


class TimingMiddleware:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            metrics.HTTP_SECONDS.labels(
                scope["method"], route_template(self.routes, scope), str(status)
            ).observe(time.perf_counter() - started)

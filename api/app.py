"""The HTTP application: ``create_app(settings)``, its routes and middleware.

Nothing is wired at import. The lifespan opens the composition root
(``api.server.runtime.open_runtime``, which builds the database, the services,
the broker link, the leader role and the periodic jobs once) and hangs it on
``app.state.runtime``; routes reach it through ``api.http.deps.runtime``.
"""

import contextlib
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from api.clock import Clock
from api.errors import SmartVendError
from api.http import catalogue, firmware
from api.http.body_limit import BodyLimit
from api.http.deps import runtime
from api.http.errors import http_error, smartvend_error, unexpected_error
from api.http.observability import routes as observability_routes
from api.http.openapi import api_routes, openapi_document
from api.http.request_id import RequestId
from api.http.source import SourceAddress
from api.http.timing import TimingMiddleware
from api.payments.base import PaymentGateway
from api.server import heap
from api.server.runtime import open_runtime
from api.services.catalogue import IMAGE_MAX_BYTES
from api.settings import Settings


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok", "mqtt_connected": runtime(request).mqtt_connected})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(request.app.routes))


def create_app(
    settings: Settings,
    *,
    routes: Sequence[BaseRoute] = (),
    middleware: Sequence[Middleware] = (),
    clock: Clock | None = None,
    gateway: PaymentGateway | None = None,
    mqtt: bool = True,
) -> Starlette:
    """The whole server; ``routes`` adds pages (see ``web.app``)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(
            settings, clock=clock, gateway=gateway, serving=True, mqtt=mqtt
        ) as rt:
            app.state.runtime = rt
            with heap.settled():
                yield

    all_routes: list[BaseRoute] = [
        Route("/healthz", health, methods=["GET"]),
        *observability_routes,
        Route("/openapi.json", openapi, methods=["GET"]),
        *api_routes(),
        *routes,
    ]
    return Starlette(
        routes=all_routes,
        middleware=[
            Middleware(RequestId),
            Middleware(TimingMiddleware, routes=all_routes),
            Middleware(SourceAddress, trusted_proxies=settings.trusted_proxies),
            Middleware(
                BodyLimit,
                max_bytes=settings.max_body_bytes,
                larger=(
                    (catalogue.IMAGE_UPLOAD, IMAGE_MAX_BYTES),
                    (firmware.UPLOAD, settings.firmware_max_bytes),
                ),
            ),
            *middleware,
        ],
        exception_handlers={
            SmartVendError: smartvend_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
        lifespan=lifespan,
    )

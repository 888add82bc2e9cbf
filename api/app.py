"""The composition root: ``create_app(settings)`` and its lifespan.

Nothing is wired at import.  The lifespan opens the database, builds the
services, starts the embedded broker (unless ``MQTT_URL`` names another), the
MQTT bridge and the periodic work, and stops them in reverse order.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from api.clock import Clock
from api.errors import SmartVendError
from api.http import admin, catalogue, device, firmware, operators, shopper
from api.http.auth import AdminTokens
from api.http.body_limit import BodyLimit
from api.http.errors import http_error, smartvend_error, unexpected_error
from api.http.observability import routes as observability_routes
from api.http.openapi import openapi_document
from api.http.request_id import RequestId
from api.http.source import SourceAddress
from api.http.streams import StreamGate
from api.http.timing import TimingMiddleware
from api.infra import leader
from api.observability.collectors import watch_pool
from api.payments.base import PaymentGateway
from api.security.derived_keys import derive_secret
from api.server import periodic as background
from api.server.runtime import open_runtime
from api.services.alert_sender import AlertSender
from api.services.catalogue import IMAGE_MAX_BYTES
from api.services.mailer import SmtpMailer
from api.services.report_mail import ReportMails
from api.services.webhooks_out import WebhookSender
from api.settings import Settings

log = logging.getLogger(__name__)


async def health(request: Request) -> Response:
    mqtt = getattr(request.app.state, "mqtt", None)
    return JSONResponse({"status": "ok", "mqtt_connected": bool(mqtt and mqtt.connected)})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


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
        async with open_runtime(settings, clock=clock, gateway=gateway) as rt:
            app.state.settings = rt.settings
            app.state.engine = rt.engine
            app.state.services = rt.services
            app.state.tokens = AdminTokens(derive_secret(rt.settings, "admin-tokens"))
            app.state.notifier = rt.notifier
            app.state.streams = StreamGate(
                rt.settings.max_streams, rt.settings.max_streams_per_client
            )
            if rt.settings.admin_password is not None and await rt.services.admins.ensure(
                "admin", str(rt.settings.admin_password)
            ):
                log.info("created admin user 'admin' from ADMIN_PASSWORD")
            async with contextlib.AsyncExitStack() as stack:
                stack.callback(watch_pool(rt.engine))
                leadership = await stack.enter_async_context(
                    leader.campaigning(leader.for_settings(rt.settings))
                )
                app.state.leadership = leadership
                if mqtt:
                    from api.server.mqtt_link import start_mqtt  # only servers that speak MQTT

                    app.state.mqtt = await stack.enter_async_context(start_mqtt(rt, leadership))
                sender = AlertSender(
                    rt.services.ctx, SmtpMailer.from_settings(rt.settings), rt.settings
                )
                app.state.alert_sender = sender
                hooks = WebhookSender(rt.services.ctx)
                app.state.webhook_sender = hooks
                periodic: list[tuple[float, str, Callable[[], Awaitable[object]]]] = [
                    (1.0, "deadlines", rt.services.sweeper.tick),
                    (5.0, "refunds", rt.services.refunds.process_pending),
                    (30.0, "reconcile", rt.services.reconciler.run_once),
                    (1.0, "rollouts", rt.services.rollouts.tick),
                ]
                if rt.settings.webhook_interval_s > 0:
                    interval = float(rt.settings.webhook_interval_s)
                    periodic.append((interval, "webhooks", hooks.run_once))
                mails = ReportMails(rt.services.ctx, sender.mailer, rt.settings)
                if mails.enabled:  # the emailed sales report (REPORT_EMAIL_PERIOD)
                    periodic.append((60.0, "report mail", mails.run_once))
                if rt.settings.alert_interval_s > 0:
                    periodic.append(
                        (float(rt.settings.alert_interval_s), "alerts", sender.run_once)
                    )
                # Singleton work: only the leader among several workers runs it.
                tasks = [
                    asyncio.create_task(
                        background.every(interval, name, leader.leader_only(leadership, work)),
                        name=f"{background.TASK_PREFIX}{name}",
                    )
                    for interval, name, work in periodic
                ]
                try:
                    yield
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)

    all_routes: list[BaseRoute] = [
        Route("/healthz", health, methods=["GET"]),
        *observability_routes,
        Route("/openapi.json", openapi, methods=["GET"]),
        *shopper.routes,
        *device.routes,
        *admin.routes,
        *firmware.routes,
        *catalogue.routes,
        *operators.routes,
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

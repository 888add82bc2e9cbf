"""Read-only MQTT accounts for integrators: created with a password shown once, revoked."""

import shlex

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.http.deps import runtime, services, settings
from api.mqtt.accounts import create_integrator, list_integrators, revoke_integrator
from api.services.rights import Right
from web.admin.device_config import mqtt_endpoint
from web.admin.guard import admin_page, field
from web.admin.templating import render

TOPICS = ("status", "state", "telemetry", "events", "sales")


def example(request: Request, username: str, password: str, topic: str) -> str:
    host, port, tls = mqtt_endpoint(settings(request), request)
    parts = [
        "mosquitto_sub",
        "-h",
        host,
        "-p",
        str(port),
        "-u",
        username,
        "-P",
        password,
        "-t",
        topic,
        "-v",
    ]
    if tls:
        parts[1:1] = ["--capath", "/etc/ssl/certs"]
    return shlex.join(parts)


@admin_page(right=Right.MACHINES)
async def integrators(request: Request) -> Response:
    rows = await list_integrators(services(request).ctx.db)
    done = request.query_params.get("done") == "revoked"
    return render(
        request,
        "admin/integrators.html",
        {
            "rows": rows,
            "done": done,
            "error": "",
            "example": example(request, "USER", "PASS", "smartvend/v1/machines/+/state"),
        },
    )


@admin_page(right=Right.MACHINES)
async def create(request: Request) -> Response:
    ctx = services(request).ctx
    username = field(request, "username", 64)
    description = field(request, "description", 200) or None
    integrator, password = await create_integrator(ctx.db, ctx.clock, username, description)
    return render(
        request,
        "admin/integrator_created.html",
        {
            "username": integrator.username,
            "password": password,
            "commands": [
                example(request, integrator.username, password, f"smartvend/v1/machines/+/{t}")
                for t in TOPICS
            ]
            + [example(request, integrator.username, password, "smartvend/v1/server/status")],
        },
        201,
    )


@admin_page(right=Right.MACHINES)
async def revoke(request: Request) -> Response:
    username = str(request.path_params["username"])
    await revoke_integrator(services(request).ctx.db, username)
    await runtime(request).disconnect(username)
    return RedirectResponse("/admin/integrators?done=revoked", status_code=303)

"""The machines' HTTP fallback, authenticated with the machine's API key."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import Unauthorized
from api.http import specs
from api.http.auth import bearer
from api.http.deps import services
from api.http.route_table import DEVICE, route
from api.http.shapes import BOOL, MID, STR, obj
from api.http.shopper import machine_id


async def _machine(request: Request) -> str:
    mid = machine_id(request)
    if not await services(request).machines.authenticate(mid, bearer(request)):
        raise Unauthorized("wrong or revoked API key for this machine")
    return mid


async def status(request: Request) -> Response:
    mid = await _machine(request)
    return JSONResponse(await services(request).views.device_status(mid))


async def confirm(request: Request) -> Response:
    mid = await _machine(request)
    body = await specs.read(request, specs.CONFIRM)
    applied = await services(request).dispense.confirm(mid, body["cmd_id"], body["dispensed"])
    return JSONResponse({"cmd_id": body["cmd_id"], "applied": applied})


async def report_error(request: Request) -> Response:
    mid = await _machine(request)
    body = await specs.read(request, specs.REPORT_ERROR)
    now = services(request).ctx.clock.now()
    await services(request).machines.record_event(
        mid,
        {
            "type": "error",
            "code": body["code"],
            "detail": body["detail"],
            "ts": now,
        },
    )
    return JSONResponse({"recorded": True})


routes = [
    route(
        "GET",
        "/api/machine/{mid}/status",
        status,
        summary="Device fallback: desired state and open commands",
        ok=obj({"desired": {"type": "object"}, "commands": {"type": "array"}}),
        params=[MID],
        errors=(400, 404),
        **DEVICE,
    ),
    route(
        "POST",
        "/api/machine/{mid}/confirm",
        confirm,
        summary="Device fallback: report a command's units out (idempotent)",
        ok=obj({"cmd_id": STR, "applied": BOOL}),
        params=[MID],
        body=specs.CONFIRM,
        errors=(404,),
        **DEVICE,
    ),
    route(
        "POST",
        "/api/machine/{mid}/report-error",
        report_error,
        summary="Device fallback: report an error",
        ok=obj({"recorded": BOOL}),
        params=[MID],
        body=specs.REPORT_ERROR,
        errors=(404,),
        **DEVICE,
    ),
]

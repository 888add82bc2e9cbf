"""The machines' HTTP fallback, authenticated with the machine's API key."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.errors import Unauthorized
from api.http import specs
from api.http.auth import bearer
from api.http.deps import services
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
    Route("/api/machine/{mid}/status", status, methods=["GET"]),
    Route("/api/machine/{mid}/confirm", confirm, methods=["POST"]),
    Route("/api/machine/{mid}/report-error", report_error, methods=["POST"]),
]

"""The machines' HTTP fallback, authenticated with the machine's API key."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.errors import Unauthorized
from api.http import body as b
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
    body = await b.json_object(request)
    applied = await services(request).dispense.confirm(
        mid, b.text(body, "cmd_id", max_len=64), b.integer(body, "dispensed", low=0, high=1000)
    )
    return JSONResponse({"cmd_id": body["cmd_id"], "applied": applied})


async def report_error(request: Request) -> Response:
    mid = await _machine(request)
    body = await b.json_object(request)
    now = services(request).ctx.clock.now()
    await services(request).machines.record_event(
        mid,
        {
            "type": "error",
            "code": b.text(body, "code", max_len=128),
            "detail": b.text(body, "detail", max_len=512, min_len=0, required=False),
            "ts": now,
        },
    )
    return JSONResponse({"recorded": True})


routes = [
    Route("/api/machine/{mid}/status", status, methods=["GET"]),
    Route("/api/machine/{mid}/confirm", confirm, methods=["POST"]),
    Route("/api/machine/{mid}/report-error", report_error, methods=["POST"]),
]

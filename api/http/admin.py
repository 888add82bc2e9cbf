"""The admin API for scripts: bearer tokens from /api/admin/login."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.http import specs
from api.http.deps import require_admin, services, source_address, tokens
from api.http.shopper import machine_id
from api.services.machines import NewMachine


async def login(request: Request) -> Response:
    body = await specs.read(request, specs.LOGIN)
    user = await services(request).admins.login(
        body["username"], body["password"], source_address(request)
    )
    issuer = tokens(request)
    token = issuer.issue(user.username, user.token_version)
    return JSONResponse({"token": token, "expires_in": issuer.ttl_s})


async def logout(request: Request) -> Response:
    """Revoke every token (and dashboard session) of the calling admin."""
    await services(request).admins.log_out(await require_admin(request))
    return JSONResponse({"logged_out": True})


async def verify(request: Request) -> Response:
    return JSONResponse({"username": await require_admin(request), "valid": True})


async def register(request: Request) -> Response:
    await require_admin(request)
    body = await specs.read(request, specs.REGISTER)
    machine, api_key = await services(request).machines.register(
        NewMachine(
            machine_id=body["machine_id"],
            name=body["name"],
            location=body["location"],
            price_amount=body["price"]["amount"],
            currency=body["price"]["currency"],
            capacity=body["capacity"],
            stock=body["stock"],
        )
    )
    return JSONResponse({"machine_id": machine.id, "api_key": api_key}, status_code=201)


async def update_stock(request: Request) -> Response:
    await require_admin(request)
    body = await specs.read(request, specs.UPDATE_STOCK)
    machine = await services(request).machines.set_stock(machine_id(request), body["stock"])
    return JSONResponse(
        {"machine_id": machine.id, "stock": machine.stock, "capacity": machine.capacity}
    )


async def low_stock_alert(request: Request) -> Response:
    await require_admin(request)
    raised = await services(request).alerts.check_low_stock()
    return JSONResponse({"alerts": raised})


routes = [
    Route("/api/admin/login", login, methods=["POST"]),
    Route("/api/admin/logout", logout, methods=["POST"]),
    Route("/api/admin/verify", verify, methods=["GET"]),
    Route("/api/machine/register", register, methods=["POST"]),
    Route("/api/machine/{mid}/update-stock", update_stock, methods=["POST"]),
    Route("/low-stock-alert", low_stock_alert, methods=["POST"]),
]

"""The admin API for scripts: bearer tokens from /api/admin/login."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.http import specs
from api.http.deps import needs, principal, services, source_address, tokens
from api.http.operators import in_scope
from api.http.route_table import ADMIN, route
from api.http.shapes import BOOL, LOCATIONS, MID, STR, integer, obj
from api.http.shopper import machine_id
from api.services.machines import NewMachine
from api.services.rights import Right


async def login(request: Request) -> Response:
    body = await specs.read(request, specs.LOGIN)
    user = await services(request).admins.login(
        body["username"], body["password"], source_address(request)
    )
    issuer = tokens(request)
    token = issuer.issue(user.username, user.token_version)
    return JSONResponse({"token": token, "expires_in": issuer.ttl_s})


@needs(Right.READ)
async def logout(request: Request) -> Response:
    """Revoke every token (and dashboard session) of the calling user."""
    await services(request).admins.log_out(principal(request).username)
    return JSONResponse({"logged_out": True})


@needs(Right.READ)
async def verify(request: Request) -> Response:
    who = principal(request)
    return JSONResponse(
        {
            "username": who.username,
            "valid": True,
            "role": who.role,
            "locations": None if who.locations is None else list(who.locations),
        }
    )


@needs(Right.MACHINES)
async def register(request: Request) -> Response:
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
        ),
        by=principal(request).username,
    )
    return JSONResponse({"machine_id": machine.id, "api_key": api_key}, status_code=201)


@needs(Right.STOCK)
async def update_stock(request: Request) -> Response:
    mid = machine_id(request)
    await in_scope(request, principal(request), mid)
    body = await specs.read(request, specs.UPDATE_STOCK)
    machine = await services(request).machines.set_stock(
        mid, body["stock"], by=principal(request).username
    )
    return JSONResponse(
        {"machine_id": machine.id, "stock": machine.stock, "capacity": machine.capacity}
    )


@needs(Right.STOCK)
async def low_stock_alert(request: Request) -> Response:
    raised = await services(request).alerts.check_low_stock()
    return JSONResponse({"alerts": raised})


routes = [
    route(
        "POST",
        "/api/admin/login",
        login,
        summary="Admin token for scripts (valid one hour)",
        ok=obj({"token": STR, "expires_in": {"const": 3600}}),
        body=specs.LOGIN,
        errors=(401, 429),
        tag="admin",
    ),
    route(
        "POST",
        "/api/admin/logout",
        logout,
        summary="Log out: every token and dashboard session of this admin stops working",
        ok=obj({"logged_out": BOOL}),
        **ADMIN,
    ),
    route(
        "GET",
        "/api/admin/verify",
        verify,
        summary="Check a token: who it names, their role and locations",
        ok=obj(
            {
                "username": STR,
                "valid": BOOL,
                "role": {"enum": list(specs.ROLE_NAMES)},
                "locations": LOCATIONS,
            }
        ),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/machine/register",
        register,
        summary="Register a machine; the API key is shown once",
        ok=obj({"machine_id": STR, "api_key": STR}),
        body=specs.REGISTER,
        status=201,
        errors=(403, 409),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/machine/{mid}/update-stock",
        update_stock,
        summary="Set a machine's stock (restock)",
        ok=obj({"machine_id": STR, "stock": integer(), "capacity": integer()}),
        params=[MID],
        body=specs.UPDATE_STOCK,
        errors=(403, 404, 409),
        **ADMIN,
    ),
    route(
        "POST",
        "/low-stock-alert",
        low_stock_alert,
        summary="Run the low-stock check now",
        ok=obj({"alerts": {"type": "array"}}),
        errors=(403,),
        **ADMIN,
    ),
]

"""Logging in and out of the dashboard."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.errors import InvalidCredentials, RateLimited
from api.http.deps import services, source_address
from api.services.admins import LOGIN_WINDOW_S
from api.services.rights import Right
from web.admin import session
from web.admin.guard import admin_page, read_form
from web.admin.templating import message_page, render


def safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never another site."""
    if target and target.startswith("/admin") and "//" not in target and "\\" not in target:
        return target
    return "/admin"


def _login_form(
    request: Request, status: int = 200, error: str = "", username: str = "", nxt: str = "/admin"
) -> Response:
    nonce = session.new_nonce(request)
    response = render(
        request, "admin/login.html", {"error": error, "username": username, "next": nxt}, status
    )
    session.set_nonce_cookie(request, response, nonce)
    return response


async def login_page(request: Request) -> Response:
    nxt = safe_next(request.query_params.get("next"))
    if await session.admin_of(request) is not None:
        return RedirectResponse(nxt, status_code=303)
    return _login_form(request, nxt=nxt)


async def login(request: Request) -> Response:
    refused = await read_form(request)
    if refused is not None:
        return refused
    form = request.state.form
    username = str(form.get("username") or "")[:64]
    password = str(form.get("password") or "")[:256]
    nxt = safe_next(str(form.get("next") or ""))
    try:
        user = await services(request).admins.login(username, password, source_address(request))
    except RateLimited as exc:
        response = message_page(request, 429, "Too many attempts", exc.message)
        response.headers["Retry-After"] = str(exc.retry_after or LOGIN_WINDOW_S)
        return response
    except InvalidCredentials:
        return _login_form(request, 401, "Wrong username or password.", username, nxt)
    response = RedirectResponse(nxt, status_code=303)
    session.start(request, response, user.username, user.token_version)
    return response


@admin_page(right=Right.READ)
async def logout(request: Request) -> Response:
    await services(request).admins.log_out(request.state.admin)
    response = RedirectResponse("/admin/login", status_code=303)
    session.end(request, response)
    return response

"""What routes take from the running app, and who calls them with which rights."""

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from api.errors import Unauthorized
from api.http.auth import AdminTokens, bearer
from api.services.container import Services
from api.services.rights import Principal, Right
from api.settings import Settings

ADMIN_COOKIE = "sv_admin"


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


def tokens(request: Request) -> AdminTokens:
    found: AdminTokens = request.app.state.tokens
    return found


def admin_token(request: Request) -> str:
    """The bearer token, or the dashboard's session cookie."""
    if request.headers.get("authorization") is not None:
        return bearer(request)
    cookie = request.cookies.get(ADMIN_COOKIE)
    if cookie:
        return cookie
    raise Unauthorized("log in first")


async def require(request: Request, right: Right = Right.READ) -> Principal:
    """The caller, for a token that is signed, unexpired, not logged out and whose
    user is active; Forbidden (403) when their role lacks ``right``."""
    username, version = tokens(request).claims(admin_token(request))
    who = await services(request).admins.check_session(username, version)
    request.state.principal = who
    return who.check(right)


async def require_admin(request: Request) -> str:
    """The username of a caller holding every right (role ``admin``). Routes that a
    narrower role may use call ``require(request, Right.X)`` or use ``@needs``."""
    return (await require(request, Right.USERS)).username


Endpoint = Callable[[Request], Awaitable[Response]]


def needs(right: Right) -> Callable[[Endpoint], Endpoint]:
    """A JSON route that only callers with ``right`` reach (``request.state.principal``)."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            await require(request, right)
            return await endpoint(request)

        guarded.right = right  # type: ignore[attr-defined]
        return guarded

    return wrap


def principal(request: Request) -> Principal:
    """The caller that ``needs`` or ``require`` let through."""
    found: Principal = request.state.principal
    return found


def source_address(request: Request) -> str:
    """The TCP peer, or what a trusted proxy forwarded (``api.http.source``)."""
    return request.client.host if request.client else "unknown"

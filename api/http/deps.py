"""What routes take from the running app, and who calls them with which rights.

Routes reach the composition root one way: ``runtime(request)``, the
:class:`~api.server.runtime.Runtime` the app's lifespan built;
``services``, ``settings`` and ``tokens`` are short cuts into it.
"""

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from api.errors import Unauthorized
from api.http.auth import AdminTokens, bearer
from api.services.container import Services
from api.services.rights import Principal, Right
from api.settings import Settings

if TYPE_CHECKING:  # the root imports the HTTP edge it builds
    from api.server.runtime import Runtime

ADMIN_COOKIE = "sv_admin"


def runtime(request: Request) -> "Runtime":
    """The composition root this app runs on (``app.state.runtime``, set once)."""
    found: Runtime = request.app.state.runtime
    return found


def runtime_if_running(request: Request) -> "Runtime | None":
    """The root, or None for an app whose lifespan has not run (a bare test app)."""
    found: Runtime | None = getattr(request.app.state, "runtime", None)
    return found


def services(request: Request) -> Services:
    return runtime(request).services


def settings(request: Request) -> Settings:
    return runtime(request).settings


def tokens(request: Request) -> AdminTokens:
    return runtime(request).tokens


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

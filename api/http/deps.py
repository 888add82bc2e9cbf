"""What routes take from the running app."""

from starlette.requests import Request

from api.errors import Unauthorized
from api.http.auth import AdminTokens, bearer
from api.services.container import Services
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


async def require_admin(request: Request) -> str:
    """The admin's username, for a token that is signed, unexpired and not logged out."""
    username, version = tokens(request).claims(admin_token(request))
    await services(request).admins.check_session(username, version)
    return username


def source_address(request: Request) -> str:
    """The TCP peer, or what a trusted proxy forwarded (``api.http.source``)."""
    return request.client.host if request.client else "unknown"

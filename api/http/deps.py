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


def require_admin(request: Request) -> str:
    """The admin's username from a bearer token or the dashboard's session cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        return tokens(request).verify(bearer(request))
    cookie = request.cookies.get(ADMIN_COOKIE)
    if cookie:
        return tokens(request).verify(cookie)
    raise Unauthorized("log in first")


def source_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"

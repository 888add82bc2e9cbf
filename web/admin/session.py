"""The dashboard's session: the API's signed admin token in an HttpOnly cookie and a
CSRF token derived from it. Failed logins share the API's throttle
(``Admins.login``); logging out revokes the token (``Admins.log_out``).
"""

import hashlib
import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from api.errors import Unauthorized
from api.http.deps import ADMIN_COOKIE, services, settings, tokens
from api.security.derived_keys import derive_secret
from api.services.rights import Principal

LOGIN_COOKIE = "sv_login"  # a random nonce binding the login form to its browser
CSRF_FIELD = "csrf"
PATH = "/admin"  # the cookies go to the dashboard only, never to the JSON API


def _key(request: Request) -> bytes:
    return derive_secret(settings(request), "admin-csrf").encode()


def _mac(request: Request, value: str) -> str:
    return hmac.new(_key(request), value.encode(), hashlib.sha256).hexdigest()


async def user_of(request: Request) -> Principal | None:
    """The user of a valid, unexpired, not logged-out session cookie, else None."""
    cookie = request.cookies.get(ADMIN_COOKIE)
    if not cookie:
        return None
    try:
        username, version = tokens(request).claims(cookie)
        return await services(request).admins.check_session(username, version)
    except Unauthorized:
        return None


async def admin_of(request: Request) -> str | None:
    """The username of a valid session cookie, else None."""
    who = await user_of(request)
    return None if who is None else who.username


def csrf_token(request: Request) -> str:
    """The form token of this session (or of the login form before there is one)."""
    cookie = request.cookies.get(ADMIN_COOKIE)
    if cookie and getattr(request.state, "admin", None):
        return _mac(request, "session:" + cookie)
    nonce = getattr(request.state, "login_nonce", None) or request.cookies.get(LOGIN_COOKIE)
    return _mac(request, "login:" + nonce) if nonce else ""


def csrf_ok(request: Request, form: FormData) -> bool:
    sent = form.get(CSRF_FIELD)
    expected = csrf_token(request)
    return isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent, expected)


def new_nonce(request: Request) -> str:
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    request.state.login_nonce = nonce
    return nonce


def set_nonce_cookie(request: Request, response: Response, nonce: str) -> None:
    if request.cookies.get(LOGIN_COOKIE) != nonce:
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=3600,
            path=PATH,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )


def start(request: Request, response: Response, username: str, version: int) -> None:
    issuer = tokens(request)
    response.set_cookie(
        ADMIN_COOKIE,
        issuer.issue(username, version),
        max_age=issuer.ttl_s,
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path=PATH)


def end(request: Request, response: Response) -> None:
    response.delete_cookie(
        ADMIN_COOKIE, path=PATH, httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )

"""Every admin page goes through ``admin_page``: a session, CSRF on POST, HTML errors."""

import functools
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.errors import SmartVendError
from api.http.errors import status_of
from web.admin import session
from web.admin.templating import message_page

log = logging.getLogger(__name__)
Endpoint = Callable[[Request], Awaitable[Response]]
MAX_FORM_FIELDS = 50


def login_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(f"/admin/login?next={quote(target, safe='')}", status_code=303)


def unauthenticated(request: Request) -> Response:
    if request.method == "GET" and "text/event-stream" not in request.headers.get("accept", ""):
        return login_redirect(request)
    return message_page(request, 401, "Log in first", "Your session is missing or has expired.")


def error_page(request: Request, exc: SmartVendError) -> Response:
    status = status_of(exc)
    if status >= 500:
        log.warning("admin page %s: %s", request.url.path, exc.message)
    return message_page(request, status, exc.code.replace("_", " ").capitalize(), exc.message)


async def read_form(request: Request, max_fields: int = MAX_FORM_FIELDS) -> Response | None:
    """Parse the POSTed form into ``request.state.form``; a 403 page when CSRF fails."""
    form = await request.form(max_files=0, max_fields=max_fields)
    request.state.form = form
    if not session.csrf_ok(request, form):
        return message_page(
            request,
            403,
            "Form expired",
            "This form is missing its security token. Reload the page and retry.",
        )
    return None


def admin_page(endpoint: Endpoint) -> Endpoint:
    return admin_form_page(MAX_FORM_FIELDS)(endpoint)


def admin_form_page(max_fields: int) -> Callable[[Endpoint], Endpoint]:
    """``admin_page`` for a form of up to ``max_fields`` fields (a planogram's grid)."""
    return functools.partial(_guard, max_fields=max_fields)


def _guard(endpoint: Endpoint, max_fields: int) -> Endpoint:
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        username = await session.admin_of(request)
        if username is None:
            return unauthenticated(request)
        request.state.admin = username
        if request.method == "POST":
            refused = await read_form(request, max_fields)
            if refused is not None:
                return refused
        try:
            return await endpoint(request)
        except SmartVendError as exc:
            return error_page(request, exc)

    return guarded


def field(request: Request, name: str, max_len: int = 200) -> str:
    """A text field of the POSTed form, stripped; too long is cut to an error by callers."""
    value = request.state.form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    return text[: max_len + 1]

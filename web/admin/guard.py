"""Every admin page goes through ``admin_page``: a session, a right, CSRF on POST, HTML errors."""

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import overload
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.errors import Forbidden, SmartVendError
from api.http.deps import services
from api.http.errors import status_of
from api.services.rights import Principal, Right
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


@overload
def admin_page(
    endpoint: Endpoint, *, right: Right | None = None, max_fields: int = MAX_FORM_FIELDS
) -> Endpoint: ...


@overload
def admin_page(
    endpoint: None = None, *, right: Right | None = None, max_fields: int = MAX_FORM_FIELDS
) -> Callable[[Endpoint], Endpoint]: ...


def admin_page(
    endpoint: Endpoint | None = None,
    *,
    right: Right | None = None,
    max_fields: int = MAX_FORM_FIELDS,
) -> Endpoint | Callable[[Endpoint], Endpoint]:
    """Guard a dashboard page: a session, the role's ``right``, CSRF on POST, HTML errors.

    ``@admin_page(right=Right.STOCK)``; bare ``@admin_page`` asks ``Right.READ`` of a GET
    and, until a page names its right, every right (role admin) of a POST. ``max_fields``
    bounds a POSTed form (a planogram's grid has more than most).
    """
    if endpoint is None:

        def wrap(page: Endpoint) -> Endpoint:
            return admin_page(page, right=right, max_fields=max_fields)

        return wrap
    page = endpoint

    @functools.wraps(page)
    async def guarded(request: Request) -> Response:
        who = await session.user_of(request)
        if who is None:
            return unauthenticated(request)
        request.state.admin = who.username
        request.state.principal = who
        needed = right or (Right.READ if request.method in ("GET", "HEAD") else Right.USERS)
        if not who.can(needed):
            try:
                who.check(needed)
            except Forbidden as exc:
                return message_page(request, 403, "Not allowed", exc.message)
        if who.locations is not None:
            outside = await _outside_scope(request, who)
            if outside is not None:
                return message_page(request, 403, "Not allowed", outside)
        if request.method == "POST":
            refused = await read_form(request, max_fields)
            if refused is not None:
                return refused
        try:
            return await page(request)
        except SmartVendError as exc:
            return error_page(request, exc)

    guarded.right = right  # type: ignore[attr-defined]
    return guarded


def admin_form_page(
    max_fields: int, *, right: Right | None = None
) -> Callable[[Endpoint], Endpoint]:
    """``admin_page`` for a form of up to ``max_fields`` fields (a planogram's grid)."""
    return admin_page(right=right, max_fields=max_fields)


async def _outside_scope(request: Request, who: Principal) -> str | None:
    """Why a user limited to locations may not open this machine's or order's page."""
    views = services(request)
    mid = request.path_params.get("mid")
    oid = request.path_params.get("oid")
    try:
        if mid is None and oid is not None:
            mid = (await views.order_views.detail(str(oid))).order.machine_id
        if mid is not None:
            who.check_machine(str(mid), (await views.admin_views.machine(str(mid))).location)
    except Forbidden as exc:
        return exc.message
    except SmartVendError:
        return None  # not found: the page says so itself
    return None


def field(request: Request, name: str, max_len: int = 200) -> str:
    """A text field of the POSTed form, stripped; too long is cut to an error by callers."""
    value = request.state.form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    return text[: max_len + 1]

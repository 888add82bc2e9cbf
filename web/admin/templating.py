"""Rendering admin pages with the pages' one environment (``web.templating``).

Admin pages are never cached and always carry the strict CSP; every page gets
the signed-in admin and the form token.
"""

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from web.admin import session
from web.templating import day, money, security_headers, templates, when

__all__ = ["SECURITY_HEADERS", "day", "message_page", "money", "plain", "render", "when"]

SECURITY_HEADERS = security_headers(strict=True, no_store=True)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    values = {
        "admin": getattr(request.state, "admin", None),
        "user": getattr(request.state, "principal", None),
        "csrf": session.csrf_token(request),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, values, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def message_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "admin/message.html", {"title": title, "message": message}, status)


def plain(text: str, status: int) -> Response:
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)

"""Rendering admin pages: one Jinja2 environment, formatting filters, safe headers."""

import datetime as dt
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from api.money import money as rupees
from web.admin import session

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def money(amount: int | float | None, currency: str = "INR") -> str:
    """Paise as rupees, grouped the Indian way (₹1,00,000.00); "-" for no amount."""
    if amount is None:
        return "-"
    return rupees(round(amount), currency)


def when(ts: int | None) -> str:
    if ts is None:
        return "never"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def day(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%d %b")


templates.env.filters["money"] = money
templates.env.filters["when"] = when
templates.env.filters["day"] = day


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    values = {
        "admin": getattr(request.state, "admin", None),
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

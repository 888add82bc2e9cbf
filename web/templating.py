"""The one Jinja2 environment of the shopper and admin pages: templates, filters
(money, prices, times), static URLs and the security headers of every page.

Templates and static files are found next to this module, never relative to
the working directory.
"""

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from api.clock import LocalCalendar
from api.http.deps import runtime_if_running
from api.lifecycle.states import OrderStatus
from api.money import money as rupees

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def money(amount: int | float | None, currency: str = "INR") -> str:
    """Paise as rupees, grouped the Indian way (₹1,00,000.00); "-" for no amount."""
    if amount is None:
        return "-"
    return rupees(round(amount), currency)


def calendar_of(request: Request) -> LocalCalendar:
    """The operators' calendar (``TIMEZONE``) of the server that serves ``request``."""
    root = runtime_if_running(request)
    return root.services.ctx.calendar if root is not None else LocalCalendar()


def when(ts: int | None, calendar: LocalCalendar) -> str:
    """A moment in the operators' local time, with its zone: 2026-12-04 11:30:05 IST."""
    if ts is None:
        return "never"
    return calendar.text(ts, "%Y-%m-%d %H:%M:%S %Z")


def day(ts: int, calendar: LocalCalendar) -> str:
    """A local day as a chart labels it: 04 Dec."""
    return calendar.text(ts, "%d %b")


@pass_context
def _when_filter(context: Context, ts: int | None) -> str:
    return when(ts, calendar_of(context["request"]))


@pass_context
def _day_filter(context: Context, ts: int) -> str:
    return day(ts, calendar_of(context["request"]))


_O = OrderStatus
ORDER_LABELS = {
    _O.CREATED: "awaiting payment",
    _O.PAID: "paid",
    _O.DISPENSING: "dispensing",
    _O.DISPENSED: "dispensed",
    _O.FAILED: "payment failed",
    _O.REFUND_PENDING: "refund pending",
    _O.REFUNDED: "refunded",
    _O.EXPIRED: "expired",
}


def order_badge(status: str, dispensed: int = 0) -> tuple[str, str]:
    """(CSS class, words) of an order's status; a vend that gave some units and refunded the
    rest reads differently from one refunded in full."""
    if status in (_O.REFUNDED, _O.REFUND_PENDING) and dispensed > 0:
        words = "partly refunded" if status == _O.REFUNDED else "partial refund pending"
        return "partial", words
    return status, ORDER_LABELS.get(OrderStatus(status), status.replace("_", " "))


def price(value: dict[str, Any] | None) -> str:
    if not value:
        return ""
    return money(int(value["amount"]), str(value.get("currency", "INR")))


@cache
def _fingerprint(path: str) -> str:
    return hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:10]


def static_url(path: str) -> str:
    """``/static/<path>?v=<content hash>`` so browsers may cache files for long."""
    return f"/static/{path}?v={_fingerprint(path)}"


templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters["money"] = money
templates.env.filters["price"] = price
templates.env.filters["when"] = _when_filter
templates.env.filters["day"] = _day_filter
templates.env.globals["static"] = static_url
templates.env.globals["order_badge"] = order_badge


# Pages load only their own scripts and styles; Razorpay's checkout (script, frames
# and calls to its own hosts) needs more, so the machine page then goes without CSP.
STRICT_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def security_headers(*, strict: bool = True, no_store: bool = False) -> dict[str, str]:
    """Every page's headers: ``strict`` adds the CSP, ``no_store`` forbids caching."""
    headers = dict(HEADERS)
    if strict:
        headers["Content-Security-Policy"] = STRICT_CSP
    if no_store:
        headers["Cache-Control"] = "no-store"
    return headers


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    no_store: bool = False,
    strict: bool = True,
) -> Response:
    headers = security_headers(strict=strict, no_store=no_store)
    return templates.TemplateResponse(
        request, name, context or {}, status_code=status_code, headers=headers
    )


def not_found(
    request: Request,
    title: str,
    message: str,
    back: tuple[str, str] = ("/", "Find a machine"),
) -> Response:
    """The friendly 404 page shoppers see for an unknown page, machine or order."""
    context = {"title": title, "message": message, "back_url": back[0], "back_text": back[1]}
    return render(request, "not_found.html", context, status_code=404)

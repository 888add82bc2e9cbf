"""One machine: registration (the key shown once), credentials, stock, price, service."""

from decimal import Decimal, InvalidOperation

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.errors import InvalidRequest
from api.http.deps import services, settings
from api.services.admin_views import DAY_S, AdminViews
from api.services.feedback_views import FeedbackViews
from api.services.fleet_stats import FleetStats
from api.services.machines import NewMachine
from web.admin import charts
from web.admin.device_config import config_data_url, firmware_config, qr_svg, shopper_url
from web.admin.fleet_pages import row_view
from web.admin.guard import admin_page, field
from web.admin.templating import day, money, render, when

DONE = {
    "stock": "Stock updated.",
    "price": "Price updated.",
    "mode": "Service mode changed.",
    "revoked": "The key is revoked: the machine cannot connect until you issue a new one.",
}


def mid_of(request: Request) -> str:
    return str(request.path_params["mid"])


def number(request: Request, name: str, low: int, high: int) -> int:
    text = field(request, name, 12)
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}")
    return int(text)


def rupees(request: Request, name: str, label: str | None = None) -> int:
    """An amount typed in rupees (e.g. 25 or 25.50, with or without ₹ and commas), as paise."""
    text = field(request, name, 16).replace("₹", "").replace(",", "").strip()
    problem = f"{label or name.capitalize()} must be an amount in rupees, like 25 or 25.50"
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidRequest(problem) from exc
    paise = value * 100
    if not value.is_finite() or paise != paise.to_integral_value():
        raise InvalidRequest(problem)
    return int(paise)


async def _disconnect(request: Request, mid: str) -> None:
    mqtt = getattr(request.app.state, "mqtt", None)
    if mqtt is not None:
        await mqtt.disconnect(mid)


def _key_page(request: Request, mid: str, name: str, api_key: str, heading: str) -> Response:
    config = firmware_config(settings(request), request, mid, api_key)
    url = shopper_url(settings(request), request, mid)
    return render(
        request,
        "admin/machine_key.html",
        {
            "mid": mid,
            "name": name,
            "api_key": api_key,
            "heading": heading,
            "config_url": config_data_url(config),
            "shopper_url": url,
            "qr": qr_svg(url, f"Scan to buy from {name}"),
        },
        201 if heading.startswith("Registered") else 200,
    )


@admin_page
async def new_form(request: Request) -> Response:
    return render(request, "admin/machine_new.html", {"values": {}, "error": ""})


@admin_page
async def register(request: Request) -> Response:
    values = {
        k: field(request, k)
        for k in ("machine_id", "name", "location", "price", "capacity", "stock")
    }
    try:
        capacity = number(request, "capacity", 1, 10_000)
        new = NewMachine(
            machine_id=values["machine_id"],
            name=values["name"],
            location=values["location"] or None,
            price_amount=rupees(request, "price"),
            capacity=capacity,
            stock=number(request, "stock", 0, capacity),
        )
        machine, api_key = await services(request).machines.register(new)
    except InvalidRequest as exc:
        return render(
            request, "admin/machine_new.html", {"values": values, "error": exc.message}, 400
        )
    return _key_page(request, machine.id, machine.name, api_key, f"Registered {machine.name}")


@admin_page
async def detail(request: Request) -> Response:
    mid = mid_of(request)
    views = AdminViews(services(request).ctx)
    row = await views.machine(mid)
    now = services(request).ctx.clock.now()
    stats = FleetStats(services(request).ctx)
    amounts, units = await stats.sales_per_day(14, mid)
    sales = [amounts.value(mid, d) or 0.0 for d in amounts.days]
    telemetry = await views.telemetry(mid, now - DAY_S)
    url = shopper_url(settings(request), request, mid)
    feedback = FeedbackViews(services(request).ctx)
    return render(
        request,
        "admin/machine.html",
        {
            "m": row_view(row),
            "row": row,
            "done": DONE.get(request.query_params.get("done", "")),
            "events": await views.events(mid),
            "failed": await views.failed_commands(mid),
            "sales_chart": charts.bars(
                f"Sales per day, {row.name}",
                [day(d) for d in amounts.days],
                sales,
                lambda v: money(v),
            ),
            "sales_rows": [
                (day(d), money(amounts.value(mid, d) or 0), int(units.value(mid, d) or 0))
                for d in amounts.days
            ],
            "telemetry": [
                (
                    key,
                    charts.line(
                        f"{key}, last 24 hours", pts, lambda v: f"{v:g}", lambda ts: when(ts)[11:16]
                    ),
                    pts[-1][1],
                )
                for key, pts in telemetry.items()
            ],
            "shopper_url": url,
            "qr": qr_svg(url, f"Scan to buy from {row.name}"),
            "feedback": await feedback.recent(mid),
            "tally": await feedback.tally(mid),
        },
    )


@admin_page
async def set_stock(request: Request) -> Response:
    mid = mid_of(request)
    await services(request).machines.set_stock(mid, number(request, "stock", 0, 10_000))
    return RedirectResponse(f"/admin/machines/{mid}?done=stock", status_code=303)


@admin_page
async def set_price(request: Request) -> Response:
    mid = mid_of(request)
    await services(request).machines.set_price(mid, rupees(request, "price"))
    return RedirectResponse(f"/admin/machines/{mid}?done=price", status_code=303)


@admin_page
async def set_mode(request: Request) -> Response:
    mid = mid_of(request)
    await services(request).machines.set_mode(mid, field(request, "mode", 20))
    return RedirectResponse(f"/admin/machines/{mid}?done=mode", status_code=303)


@admin_page
async def rotate_key(request: Request) -> Response:
    mid = mid_of(request)
    row = await AdminViews(services(request).ctx).machine(mid)
    api_key = await services(request).machines.rotate_key(mid)
    await _disconnect(request, mid)
    return _key_page(request, mid, row.name, api_key, f"New key for {row.name}")


@admin_page
async def revoke_key(request: Request) -> Response:
    mid = mid_of(request)
    await services(request).machines.revoke_key(mid)
    await _disconnect(request, mid)
    return RedirectResponse(f"/admin/machines/{mid}?done=revoked", status_code=303)

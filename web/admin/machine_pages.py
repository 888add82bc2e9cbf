"""One machine: registration (the key shown once), credentials, stock, price, service."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.errors import InvalidRequest, MachineTaken
from api.http.deps import runtime, services, settings
from api.money import big_change
from api.services.machines import MAX_PRICE, MIN_PRICE, NewMachine
from api.services.rights import Right
from api.views.admin import DAY_S
from schema import topics
from web.admin import charts
from web.admin.device_config import config_data_url, firmware_config, qr_svg, shopper_url
from web.admin.fleet_pages import row_view
from web.admin.forms import FieldErrors, price, whole_number
from web.admin.guard import admin_page, field
from web.admin.telemetry_view import telemetry_charts
from web.admin.templating import day, money, render

MAX_CAPACITY = 10_000
DONE = {
    "stock": "Stock updated.",
    "price": "Price updated.",
    "mode": "Service mode changed.",
    "threshold": "Low-stock alert threshold saved.",
    "revoked": "The key is revoked: the machine cannot connect until you issue a new one.",
}


def mid_of(request: Request) -> str:
    return str(request.path_params["mid"])


async def _disconnect(request: Request, mid: str) -> None:
    await runtime(request).disconnect(mid)


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


@admin_page(right=Right.MACHINES)
async def new_form(request: Request) -> Response:
    return render(request, "admin/machine_new.html", {"values": {}, "errors": {}})


def _new_machine(request: Request, errors: FieldErrors) -> NewMachine | None:
    machine_id = field(request, "machine_id", 40)
    if not topics.is_machine_id(machine_id):
        errors.add("machine_id", "Use 1 to 32 letters, digits, _ or -, as printed on the machine.")
    name = field(request, "name", 100)
    if not 1 <= len(name) <= 100:
        errors.add("name", "Give the machine a name of 1 to 100 characters.")
    location = field(request, "location", 200)
    if len(location) > 200:
        errors.add("location", "Keep the location to 200 characters.")
    price_amount = errors.read("price", lambda: price(request, "price", MIN_PRICE, MAX_PRICE))
    capacity = errors.read(
        "capacity", lambda: whole_number(request, "capacity", "The capacity", 1, MAX_CAPACITY)
    )
    top = capacity if capacity is not None else MAX_CAPACITY
    stock = errors.read(
        "stock",
        lambda: whole_number(request, "stock", "Stock", 0, top),
    )
    if errors or price_amount is None or capacity is None or stock is None:
        return None
    return NewMachine(
        machine_id=machine_id,
        name=name,
        location=location or None,
        price_amount=price_amount,
        capacity=capacity,
        stock=stock,
    )


@admin_page(right=Right.MACHINES)
async def register(request: Request) -> Response:
    values = {
        k: field(request, k)
        for k in ("machine_id", "name", "location", "price", "capacity", "stock")
    }
    errors = FieldErrors()
    new = _new_machine(request, errors)
    if new is not None:
        try:
            machine, api_key = await services(request).machines.register(
                new, by=request.state.admin
            )
        except MachineTaken:
            errors.add("machine_id", taken_message(new.machine_id))
        except InvalidRequest as exc:
            errors.add("form", exc.message)
        else:
            heading = f"Registered {machine.name}"
            return _key_page(request, machine.id, machine.name, api_key, heading)
    return render(
        request,
        "admin/machine_new.html",
        {"values": values, "errors": errors.messages},
        409 if "already registered" in errors.messages.get("machine_id", "") else 400,
    )


def taken_message(machine_id: str) -> str:
    return (
        f"A machine with the id {machine_id} is already registered. If you just registered it "
        "and reloaded the page, it is done: its key was shown once; open the machine to issue "
        "a new key. Otherwise choose another id."
    )


async def _detail_page(
    request: Request,
    mid: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    confirm: dict[str, object] | None = None,
    status: int = 200,
) -> Response:
    views = services(request).admin_views
    row = await views.machine(mid)
    now = services(request).ctx.clock.now()
    stats = services(request).fleet_stats
    amounts, units = await stats.sales_per_day(14, mid)
    calendar = services(request).ctx.calendar
    sales = [amounts.value(mid, d) or 0.0 for d in amounts.days]
    telemetry = await views.telemetry(mid, now - DAY_S)
    url = shopper_url(settings(request), request, mid)
    feedback = services(request).feedback_views
    return render(
        request,
        "admin/machine.html",
        {
            "m": row_view(row, calendar),
            "row": row,
            "done": DONE.get(request.query_params.get("done", "")),
            "errors": errors or {},
            "values": values or {},
            "confirm_price": confirm,
            "events": await views.events(mid),
            "failed": await views.failed_commands(mid),
            "sales_chart": charts.bars(
                f"Sales per day, {row.name}",
                [day(d, calendar) for d in amounts.days],
                sales,
                lambda v: money(v),
                empty="No sales in the last 14 days yet.",
            ),
            "sales_rows": [
                (day(d, calendar), money(amounts.value(mid, d) or 0), int(units.value(mid, d) or 0))
                for d in amounts.days
            ],
            "telemetry": telemetry_charts(telemetry, lambda ts: calendar.text(ts, "%H:%M")),
            "shopper_url": url,
            "qr": qr_svg(url, f"Scan to buy from {row.name}"),
            "feedback": await feedback.recent(mid),
            "tally": await feedback.tally(mid),
            "default_threshold": services(request).ctx.policy.low_stock_threshold,
        },
        status,
    )


@admin_page
async def detail(request: Request) -> Response:
    return await _detail_page(request, mid_of(request))


@admin_page(right=Right.STOCK)
async def set_stock(request: Request) -> Response:
    mid = mid_of(request)
    row = await services(request).admin_views.machine(mid)
    try:
        stock = whole_number(request, "stock", "Stock", 0, row.capacity)
        await services(request).machines.set_stock(mid, stock, by=request.state.admin)
    except InvalidRequest as exc:
        values = {"stock": field(request, "stock", 12)}
        return await _detail_page(
            request, mid, errors={"stock": exc.message}, values=values, status=400
        )
    return RedirectResponse(f"/admin/machines/{mid}?done=stock", status_code=303)


@admin_page(right=Right.PRICES)
async def set_price(request: Request) -> Response:
    mid = mid_of(request)
    values = {"price": field(request, "price", 24)}
    try:
        amount = price(request, "price", MIN_PRICE, MAX_PRICE)
    except InvalidRequest as exc:
        return await _detail_page(
            request, mid, errors={"price": exc.message}, values=values, status=400
        )
    row = await services(request).admin_views.machine(mid)
    if big_change(row.price_amount, amount) and field(request, "confirm", 8) != "yes":
        confirm = {"amount": amount, "old": money(row.price_amount), "new": money(amount)}
        return await _detail_page(request, mid, values=values, confirm=confirm, status=409)
    await services(request).machines.set_price(mid, amount, by=request.state.admin)
    return RedirectResponse(f"/admin/machines/{mid}?done=price", status_code=303)


@admin_page(right=Right.PRICES)
async def set_mode(request: Request) -> Response:
    mid = mid_of(request)
    await services(request).machines.set_mode(
        mid, field(request, "mode", 20), by=request.state.admin
    )
    return RedirectResponse(f"/admin/machines/{mid}?done=mode", status_code=303)


@admin_page(right=Right.MACHINES)
async def rotate_key(request: Request) -> Response:
    mid = mid_of(request)
    row = await services(request).admin_views.machine(mid)
    api_key = await services(request).machines.rotate_key(mid, by=request.state.admin)
    await _disconnect(request, mid)
    return _key_page(request, mid, row.name, api_key, f"New key for {row.name}")


@admin_page(right=Right.MACHINES)
async def revoke_key(request: Request) -> Response:
    mid = mid_of(request)
    await services(request).machines.revoke_key(mid, by=request.state.admin)
    await _disconnect(request, mid)
    return RedirectResponse(f"/admin/machines/{mid}?done=revoked", status_code=303)

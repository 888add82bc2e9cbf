"""Several products per machine in the dashboard: the catalogue, a machine's planogram
(product, price override, capacity, par, motor, enabled per slot), restocking and the
pick list. Each page posts a form and calls one service."""

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.errors import InvalidRequest, SmartVendError
from api.http.catalogue import csv_response
from api.http.deps import services
from api.services.catalogue import ProductFields
from api.services.machines import MAX_PRICE, MIN_PRICE
from api.services.rights import Right
from api.services.slots import MAX_SLOTS, SlotPlan
from web.admin.forms import FieldErrors, price, whole_number
from web.admin.guard import admin_form_page, admin_page, field
from web.admin.templating import SECURITY_HEADERS, render

EXTRA_ROWS = 4  # empty rows the editor offers for new slots
SLOT_FIELDS = ("id", "motor", "product", "price", "capacity", "par", "enabled")
GRID_FIELDS = 10 + (MAX_SLOTS + EXTRA_ROWS) * len(SLOT_FIELDS)


def _mid(request: Request) -> str:
    return str(request.path_params["mid"])


@admin_page
async def products(request: Request) -> Response:
    return await _products_page(request)


async def _products_page(
    request: Request, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    found = await services(request).catalogue.list()
    done = request.query_params.get("done")
    return render(
        request,
        "admin/products.html",
        {"products": found, "errors": errors or {}, "done": done},
        status,
    )


def _product_fields(request: Request, errors: FieldErrors) -> ProductFields | None:
    name = field(request, "name", 40)
    if not 1 <= len(name) <= 40:
        errors.add("name", "Give the product a name of 1 to 40 characters.")
    sku = field(request, "sku", 64) or None
    amount = errors.read("price", lambda: price(request, "price", MIN_PRICE, MAX_PRICE))
    if errors or amount is None:
        return None
    active = request.state.form.get("active", "on") == "on"
    return ProductFields(name=name, price_amount=amount, sku=sku, active=active)


@admin_page(right=Right.PRICES)
async def create_product(request: Request) -> Response:
    errors = FieldErrors()
    fields = _product_fields(request, errors)
    if fields is None:
        return await _products_page(request, errors.messages, 400)
    try:
        await services(request).catalogue.create(fields)
    except SmartVendError as exc:
        return await _products_page(request, {"name": exc.message}, 409)
    return RedirectResponse("/admin/products?done=added", status_code=303)


@admin_page(right=Right.PRICES)
async def update_product(request: Request) -> Response:
    errors = FieldErrors()
    fields = _product_fields(request, errors)
    if fields is None:
        return await _products_page(request, errors.messages, 400)
    await services(request).catalogue.update(str(request.path_params["pid"]), fields)
    return RedirectResponse("/admin/products?done=saved", status_code=303)


async def _planogram_page(
    request: Request, mid: str, error: str | None = None, status: int = 200
) -> Response:
    plan = await services(request).slots.get(mid)
    fleet = await services(request).admin_views.fleet()
    context = {
        "mid": mid,
        "plan": plan,
        "products": await services(request).catalogue.list(),
        "others": [m for m in fleet if m.machine_id != mid],
        "extra": range(len(plan["slots"]), len(plan["slots"]) + EXTRA_ROWS),
        "error": error,
        "done": request.query_params.get("done"),
    }
    return render(request, "admin/planogram.html", context, status)


@admin_page
async def planogram(request: Request) -> Response:
    return await _planogram_page(request, _mid(request))


def _plans(request: Request) -> list[SlotPlan]:
    """The grid's rows; a row without a slot id is left out (an empty new row)."""
    form = request.state.form
    plans = []
    for n in range(MAX_SLOTS + EXTRA_ROWS):
        slot_id = str(form.get(f"id-{n}", "")).strip().upper()
        if not slot_id:
            continue
        where = f"Slot {slot_id}: "
        try:
            motor = whole_number(request, f"motor-{n}", where + "the motor", 0, 255)
            capacity = whole_number(request, f"capacity-{n}", where + "the capacity", 1, 1000)
            par = whole_number(request, f"par-{n}", where + "par", 0, capacity)
            override = None
            if field(request, f"price-{n}", 16):
                override = price(request, f"price-{n}", MIN_PRICE, MAX_PRICE)
        except InvalidRequest as exc:
            raise InvalidRequest(
                exc.message if exc.message.startswith(where) else where + exc.message
            ) from exc
        plans.append(
            SlotPlan(
                slot_id=slot_id,
                motor=motor,
                product_id=field(request, f"product-{n}", 40),
                capacity=capacity,
                par=par,
                enabled=form.get(f"enabled-{n}") == "on",
                price_amount=override,
            )
        )
    return plans


@admin_form_page(GRID_FIELDS, right=Right.PRICES)
async def save_planogram(request: Request) -> Response:
    mid = _mid(request)
    version_text = field(request, "version", 12)
    try:
        plans = _plans(request)
        if not version_text.isdigit():
            raise InvalidRequest("Reload the page: the planogram's version is missing.")
        await services(request).slots.put(mid, int(version_text), plans)
    except SmartVendError as exc:
        return await _planogram_page(
            request, mid, exc.message, 409 if exc.code == "planogram_changed" else 400
        )
    return RedirectResponse(f"/admin/machines/{mid}/slots?done=saved", status_code=303)


@admin_form_page(GRID_FIELDS, right=Right.STOCK)
async def restock(request: Request) -> Response:
    mid = _mid(request)
    fill = field(request, "fill", 10) or None
    try:
        counts = None
        if fill is None:
            plan = await services(request).slots.get(mid)
            counts = [
                (
                    s["id"],
                    whole_number(
                        request, f"stock-{s['id']}", f"Stock of {s['id']}", 0, s["capacity"]
                    ),
                )
                for s in plan["slots"]
            ]
        await services(request).slots.restock(mid, counts, fill)
    except SmartVendError as exc:
        return await _planogram_page(request, mid, exc.message, 400)
    return RedirectResponse(f"/admin/machines/{mid}/slots?done=restocked", status_code=303)


@admin_form_page(GRID_FIELDS, right=Right.PRICES)
async def copy_planogram(request: Request) -> Response:
    mid = _mid(request)
    targets = [str(v) for v in request.state.form.getlist("to")]
    if not targets:
        return await _planogram_page(
            request, mid, "Choose the machines to copy this planogram to.", 400
        )
    await services(request).slots.copy(mid, targets)
    return RedirectResponse(f"/admin/machines/{mid}/slots?done=copied", status_code=303)


@admin_page(right=Right.STOCK)
async def picklist(request: Request) -> Response:
    chosen = request.query_params.getlist("machine_id")
    location = request.query_params.get("location") or None
    fleet = await services(request).admin_views.fleet()
    found = await services(request).slots.picklist(chosen, location)
    locations = sorted({m.location for m in fleet if m.location})
    query = urlencode(
        [("machine_id", m) for m in chosen] + ([("location", location)] if location else [])
    )
    return render(
        request,
        "admin/picklist.html",
        {
            "fleet": fleet,
            "chosen": set(chosen),
            "location": location,
            "locations": locations,
            "pick": found,
            "csv_url": "/admin/picklist.csv" + (f"?{query}" if query else ""),
        },
    )


@admin_page(right=Right.STOCK)
async def picklist_csv(request: Request) -> Response:
    chosen = request.query_params.getlist("machine_id")
    location = request.query_params.get("location") or None
    sheet = csv_response(await services(request).slots.picklist(chosen, location))
    sheet.headers.update(SECURITY_HEADERS)
    return sheet

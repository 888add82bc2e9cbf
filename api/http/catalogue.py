"""Products, planograms, restocking and pick lists (CONTRACT 5): decode, call one service,
encode. Product images are served to anyone (shoppers' pages show them)."""

import csv
import io
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import InvalidRequest
from api.http import body as b
from api.http import specs
from api.http.deps import require, services
from api.http.route_table import ADMIN, route
from api.http.shapes import (
    BOOL,
    INT,
    MID,
    PICK_PARAMS,
    PICKLIST,
    PLANOGRAM,
    PRODUCT,
    PRODUCT_ID,
    SALES,
    SLOT,
    STR,
    array,
    obj,
    query,
)
from api.http.shopper import machine_id
from api.services.catalogue import IMAGE_MAX_BYTES, ProductFields
from api.services.rights import Right
from api.services.slots import SlotPlan
from schema import topics

IMAGE_PATH = "/api/products/{product_id}/image"
IMAGE_UPLOAD = re.compile(r"/api/products/[^/]+/image")
DAY_S = 86400


def _fields(body: dict[str, object]) -> ProductFields:
    price = body["price"]
    assert isinstance(price, dict)
    sku = body["sku"]
    return ProductFields(
        name=str(body["name"]),
        price_amount=int(price["amount"]),
        currency=str(price["currency"]),
        sku=str(sku) if sku else None,
        active=bool(body["active"]),
    )


async def list_products(request: Request) -> Response:
    await require(request, Right.READ)
    return JSONResponse({"products": await services(request).catalogue.list()})


async def create_product(request: Request) -> Response:
    await require(request, Right.PRICES)
    body = await specs.read(request, specs.PRODUCT)
    created = await services(request).catalogue.create(_fields(body))
    return JSONResponse(created, status_code=201)


async def update_product(request: Request) -> Response:
    await require(request, Right.PRICES)
    body = await specs.read(request, specs.PRODUCT)
    product_id = str(request.path_params["product_id"])
    return JSONResponse(await services(request).catalogue.update(product_id, _fields(body)))


async def put_image(request: Request) -> Response:
    await require(request, Right.PRICES)
    data = await _image_body(request)
    product_id = str(request.path_params["product_id"])
    return JSONResponse(await services(request).catalogue.set_image(product_id, data))


async def _image_body(request: Request) -> bytes:
    """The upload, up to IMAGE_MAX_BYTES (above MAX_BODY_BYTES: the one route allowed to)."""
    too_large = f"an image may be at most {IMAGE_MAX_BYTES // 1024} KiB"
    return await b.read_capped(request, IMAGE_MAX_BYTES, too_large)


async def get_image(request: Request) -> Response:
    content_type, data = await services(request).catalogue.image(
        str(request.path_params["product_id"])
    )
    return Response(
        data,
        media_type=content_type,
        headers={
            # The URL carries the image's hash: a new image is a new URL.
            "Cache-Control": "public, max-age=86400",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": "inline",
        },
    )


async def get_slots(request: Request) -> Response:
    await require(request, Right.READ)
    return JSONResponse(await services(request).slots.get(machine_id(request)))


async def put_slots(request: Request) -> Response:
    await require(request, Right.PRICES)
    body = await specs.read(request, specs.PLANOGRAM)
    plans = [
        SlotPlan(
            slot_id=item["id"],
            motor=item["motor"],
            product_id=item["product"],
            capacity=item["capacity"],
            par=item["par"],
            enabled=item["enabled"],
            price_amount=item["price_override"],
            stock=item["stock"],
        )
        for item in body["slots"]
    ]
    return JSONResponse(
        await services(request).slots.put(machine_id(request), body["version"], plans)
    )


async def copy_slots(request: Request) -> Response:
    await require(request, Right.PRICES)
    body = await specs.read(request, specs.COPY_PLANOGRAM)
    copied = await services(request).slots.copy(machine_id(request), body["machines"])
    return JSONResponse({"machine_id": machine_id(request), "copied_to": copied})


async def restock(request: Request) -> Response:
    await require(request, Right.STOCK)
    body = await specs.read(request, specs.RESTOCK)
    counts = None
    if body["slots"] is not None:
        counts = [(item["id"], item["stock"]) for item in body["slots"]]
    return JSONResponse(
        await services(request).slots.restock(machine_id(request), counts, body["fill"])
    )


async def sold_out_tap(request: Request) -> Response:
    """A shopper tapped a sold-out slot (lost demand); no login."""
    counted = await services(request).slots.tap_sold_out(
        machine_id(request), str(request.path_params["slot"])
    )
    return JSONResponse({"counted": counted})


PICKLIST_FILTERS = frozenset({"machine_id", "location"})
SALES_FILTERS = frozenset({"since", "until", "machine_id"})


async def _picklist(request: Request) -> dict[str, Any]:
    await require(request, Right.STOCK)
    b.only_params(request, PICKLIST_FILTERS)
    machines = request.query_params.getlist("machine_id")
    location = request.query_params.get("location") or None
    return await services(request).slots.picklist(machines, location)


async def picklist(request: Request) -> Response:
    return JSONResponse(await _picklist(request))


async def picklist_csv(request: Request) -> Response:
    return csv_response(await _picklist(request))


def csv_response(found: dict[str, Any]) -> Response:
    """The pick list as a sheet: a row per product, a column per machine."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["product_id", "sku", "name", "units", *found["machines"]])
    for entry in found["products"]:
        product = entry["product"]
        per = entry["machines"]
        writer.writerow(
            [
                product["id"],
                _cell(product["sku"] or ""),
                _cell(product["name"]),
                entry["units"],
                *(per.get(mid, 0) for mid in found["machines"]),
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="picklist.csv"'},
    )


def _cell(text: str) -> str:
    """No formula injection when the sheet is opened in a spreadsheet."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise InvalidRequest(f"{name} must be Unix seconds")
    return int(raw)


async def sales(request: Request) -> Response:
    who = await require(request, Right.READ)
    b.only_params(request, SALES_FILTERS)
    until = _int_query(request, "until", int(time.time()) + 1)
    since = _int_query(request, "since", max(0, until - 30 * DAY_S))
    machine = request.query_params.get("machine_id") or None
    if machine is not None and not topics.is_machine_id(machine):
        raise InvalidRequest("machine_id must match [A-Za-z0-9_-]{1,32}")
    found = await services(request).slots.sales(since, until, machine)
    if who.locations is not None:  # a user limited to locations: their machines' slots only
        fleet = await services(request).admin_views.fleet()
        seen = {m.machine_id for m in fleet if who.sees(m.location)}
        found["by_slot"] = [x for x in found["by_slot"] if x["machine_id"] in seen]
        products: dict[str, dict[str, Any]] = {}
        for x in found["by_slot"]:
            entry = products.setdefault(
                x["product"]["id"], {"product": x["product"], "units": 0, "amount": 0}
            )
            entry["units"] += x["units"]
            entry["amount"] += x["amount"]
        found["by_product"] = sorted(
            products.values(), key=lambda e: (-e["amount"], e["product"]["id"])
        )
    return JSONResponse(found)


routes = [
    route(
        "GET",
        "/api/products",
        list_products,
        summary="The product catalogue",
        ok=obj({"products": array(PRODUCT)}),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/products",
        create_product,
        summary="Add a product",
        ok=PRODUCT,
        body=specs.PRODUCT,
        status=201,
        errors=(409,),
        **ADMIN,
    ),
    route(
        "PUT",
        "/api/products/{product_id}",
        update_product,
        summary="Change a product; machines selling it are told at once",
        ok=PRODUCT,
        params=[PRODUCT_ID],
        body=specs.PRODUCT,
        errors=(404, 409),
        **ADMIN,
    ),
    route(
        "PUT",
        IMAGE_PATH,
        put_image,
        summary="Upload a product's picture: the raw PNG, JPEG or WebP bytes (256 KiB at most)",
        ok=PRODUCT,
        params=[PRODUCT_ID],
        errors=(400, 404, 413),
        **ADMIN,
    ),
    route(
        "GET",
        IMAGE_PATH,
        get_image,
        summary="A product's picture, with its own content type",
        ok={"type": "string", "format": "binary"},
        params=[PRODUCT_ID],
        errors=(404,),
        media="image/*",
    ),
    route(
        "GET",
        "/api/machine/{mid}/slots",
        get_slots,
        summary="A machine's planogram",
        ok=PLANOGRAM,
        params=[MID],
        errors=(400, 404),
        **ADMIN,
    ),
    route(
        "PUT",
        "/api/machine/{mid}/slots",
        put_slots,
        summary="Replace a machine's planogram; 409 planogram_changed when the version is stale",
        ok=PLANOGRAM,
        params=[MID],
        body=specs.PLANOGRAM,
        errors=(404, 409),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/machine/{mid}/slots/copy",
        copy_slots,
        summary="Copy this planogram to other machines",
        ok=obj({"machine_id": STR, "copied_to": array(STR)}),
        params=[MID],
        body=specs.COPY_PLANOGRAM,
        errors=(404,),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/machine/{mid}/slots/{slot}/sold-out-tap",
        sold_out_tap,
        summary="A shopper tapped a sold-out slot (counted as lost demand)",
        ok=obj({"counted": BOOL}),
        params=[MID, SLOT],
        errors=(400,),
    ),
    route(
        "POST",
        "/api/machine/{mid}/restock",
        restock,
        summary="Restock: each slot's count, or fill every slot to par or capacity",
        ok=PLANOGRAM,
        params=[MID],
        body=specs.RESTOCK,
        errors=(404, 409),
        **ADMIN,
    ),
    route(
        "GET",
        "/api/picklist",
        picklist,
        summary="Units per product to bring: the sum of (par - stock) over the chosen machines",
        ok=PICKLIST,
        params=PICK_PARAMS,
        errors=(400, 404),
        **ADMIN,
    ),
    route(
        "GET",
        "/api/picklist.csv",
        picklist_csv,
        summary="The pick list as CSV (one row per product, a column per machine)",
        ok=STR,
        params=PICK_PARAMS,
        errors=(400, 404),
        media="text/csv",
        **ADMIN,
    ),
    route(
        "GET",
        "/api/reports/sales",
        sales,
        summary="Sales by product and by slot over [since, until) (default: 30 days)",
        ok=SALES,
        params=[query("since", INT), query("until", INT), query("machine_id", STR)],
        errors=(400,),
        **ADMIN,
    ),
]

"""OpenAPI paths and shapes of several products per machine (CONTRACT 5)."""

from typing import Any

from api.http import specs

JSON = "application/json"
NULLABLE_STR = {"type": ["string", "null"]}
INT = {"type": "integer", "minimum": 0}
PRICE = {
    "type": "object",
    "properties": {"amount": INT, "currency": {"type": "string"}},
    "required": ["amount", "currency"],
}


def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
    }


PRODUCT_REF = obj({"id": {"type": "string"}, "name": {"type": "string"}, "image_url": NULLABLE_STR})
PUBLIC_SLOT = obj(
    {
        "id": {"type": "string", "pattern": "^[A-Z0-9]{1,4}$"},
        "product": PRODUCT_REF,
        "price": PRICE,
        "stock": INT,
        "enabled": {"type": "boolean"},
    }
)
PUBLIC_SLOTS = {"type": "array", "items": PUBLIC_SLOT}
ORDER_LINES = {
    "type": "array",
    "items": obj(
        {
            "slot": {"type": "string"},
            "product": obj({"id": {"type": "string"}, "name": {"type": "string"}}),
            "quantity": INT,
            "dispensed": INT,
            "unit_amount": INT,
        }
    ),
}
PRODUCT = obj(
    {
        "id": {"type": "string"},
        "sku": NULLABLE_STR,
        "name": {"type": "string", "maxLength": 40},
        "image_url": NULLABLE_STR,
        "price": PRICE,
        "active": {"type": "boolean"},
    }
)
EDITOR_SLOT = obj(
    {
        "id": {"type": "string"},
        "motor": INT,
        "product": PRODUCT_REF,
        "price": PRICE,
        "price_override": {"type": ["integer", "null"]},
        "capacity": INT,
        "par": INT,
        "stock": INT,
        "enabled": {"type": "boolean"},
        "sold_out_taps": INT,
    }
)
PLANOGRAM = obj(
    {
        "machine_id": {"type": "string"},
        "version": INT,
        "slots": {"type": "array", "items": EDITOR_SLOT},
    }
)
PICKLIST = obj(
    {
        "machines": {"type": "array", "items": {"type": "string"}},
        "location": NULLABLE_STR,
        "products": {
            "type": "array",
            "items": obj(
                {
                    "product": obj(
                        {"id": {"type": "string"}, "name": {"type": "string"}, "sku": NULLABLE_STR}
                    ),
                    "units": INT,
                    "machines": {"type": "object", "additionalProperties": INT},
                }
            ),
        },
        "total": INT,
    }
)
SALES_ROW = obj(
    {
        "product": obj({"id": {"type": "string"}, "name": {"type": "string"}}),
        "units": INT,
        "amount": INT,
    }
)
SALES = obj(
    {
        "since": INT,
        "until": INT,
        "currency": {"type": "string"},
        "by_product": {"type": "array", "items": SALES_ROW},
        "by_slot": {"type": "array", "items": SALES_ROW},
    }
)
PRODUCT_ID = {"name": "product_id", "in": "path", "required": True, "schema": {"type": "string"}}
SLOT = {
    "name": "slot",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Z0-9]{1,4}$"},
}
PICK_PARAMS = [
    {
        "name": "machine_id",
        "in": "query",
        "required": False,
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
        "description": "Machines to visit (repeat); none: every machine",
    },
    {"name": "location", "in": "query", "required": False, "schema": {"type": "string"}},
]


def slot_paths(op: Any, mid: dict[str, Any]) -> dict[str, Any]:
    """The paths, built with openapi's own ``_op`` so they read like the rest."""
    admin = {"auth": True, "tag": "admin"}
    return {
        "/api/products": {
            "get": op(
                "The product catalogue",
                obj({"products": {"type": "array", "items": PRODUCT}}),
                **admin,
            ),
            "post": op(
                "Add a product",
                PRODUCT,
                body=specs.schema(specs.PRODUCT),
                status=201,
                errors=(409,),
                **admin,
            ),
        },
        "/api/products/{product_id}": {
            "put": op(
                "Change a product; machines selling it are told at once",
                PRODUCT,
                params=[PRODUCT_ID],
                body=specs.schema(specs.PRODUCT),
                errors=(404, 409),
                **admin,
            )
        },
        "/api/products/{product_id}/image": {
            "get": op(
                "A product's picture, with its own content type",
                {"type": "string", "format": "binary"},
                params=[PRODUCT_ID],
                errors=(404,),
                tag="shopper",
                media="image/*",
            ),
            "put": op(
                "Upload a product's picture: the raw PNG, JPEG or WebP bytes (256 KiB at most)",
                PRODUCT,
                params=[PRODUCT_ID],
                errors=(400, 404, 413),
                **admin,
            ),
        },
        "/api/machine/{mid}/slots": {
            "get": op("A machine's planogram", PLANOGRAM, params=[mid], errors=(400, 404), **admin),
            "put": op(
                "Replace a machine's planogram; 409 planogram_changed when the version is stale",
                PLANOGRAM,
                params=[mid],
                body=specs.schema(specs.PLANOGRAM),
                errors=(404, 409),
                **admin,
            ),
        },
        "/api/machine/{mid}/slots/copy": {
            "post": op(
                "Copy this planogram to other machines",
                obj(
                    {
                        "machine_id": {"type": "string"},
                        "copied_to": {"type": "array", "items": {"type": "string"}},
                    }
                ),
                params=[mid],
                body=specs.schema(specs.COPY_PLANOGRAM),
                errors=(404,),
                **admin,
            )
        },
        "/api/machine/{mid}/slots/{slot}/sold-out-tap": {
            "post": op(
                "A shopper tapped a sold-out slot (counted as lost demand)",
                obj({"counted": {"type": "boolean"}}),
                params=[mid, SLOT],
                errors=(400,),
            )
        },
        "/api/machine/{mid}/restock": {
            "post": op(
                "Restock: each slot's count, or fill every slot to par or capacity",
                PLANOGRAM,
                params=[mid],
                body=specs.schema(specs.RESTOCK),
                errors=(404, 409),
                **admin,
            )
        },
        "/api/picklist": {
            "get": op(
                "Units per product to bring: the sum of (par - stock) over the chosen machines",
                PICKLIST,
                params=PICK_PARAMS,
                errors=(400, 404),
                **admin,
            )
        },
        "/api/picklist.csv": {
            "get": op(
                "The pick list as CSV (one row per product, a column per machine)",
                {"type": "string"},
                params=PICK_PARAMS,
                errors=(400, 404),
                media="text/csv",
                **admin,
            )
        },
        "/api/reports/sales": {
            "get": op(
                "Sales by product and by slot over [since, until) (default: 30 days)",
                SALES,
                params=[
                    {"name": "since", "in": "query", "required": False, "schema": INT},
                    {"name": "until", "in": "query", "required": False, "schema": INT},
                    {
                        "name": "machine_id",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                ],
                errors=(400,),
                **admin,
            )
        },
    }

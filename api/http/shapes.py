"""JSON Schema pieces the route table uses: response bodies, path and query parameters.

Each route's operation is declared with the route (``api.http.route_table``); the
shapes several routes answer with, and the parameters several take, are written
once here.
"""

from typing import Any

from api.http.specs import MACHINE_ID_PATTERN, ROLE_NAMES, SLOT_ID_PATTERN, WEBHOOK_EVENTS
from schema import statuses
from schema.models import DELIVERY_STATES, ROLLOUT_MACHINE_STATES, ROLLOUT_STATES

JSON = "application/json"


def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object whose properties are all required unless ``required`` says otherwise."""
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
    }


def string(max_len: int = 128, min_len: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": min_len, "maxLength": max_len, **extra}


def integer(minimum: int = 0, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def query(
    name: str, schema: dict[str, Any], description: str = "", *, required: bool = False
) -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        param["description"] = description
    return param


STR = {"type": "string"}
BOOL = {"type": "boolean"}
INT = {"type": "integer", "minimum": 0}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_STR = {"type": ["string", "null"]}
LOCATIONS = {"type": ["array", "null"], "items": STR}
PRICE = obj({"amount": integer(), "currency": string(3, 3)})
LOOSE_PRICE = obj({"amount": INT, "currency": STR})  # as the slots' shapes state it
ERROR = obj({"error": obj({"code": STR, "message": STR})})

MID = path_param("mid", string(32, pattern=MACHINE_ID_PATTERN["pattern"]))
ORDER_ID = path_param("order_id", string(40))
USERNAME = path_param("username", string(64))
WEBHOOK_ID = path_param("webhook_id", string(40))
PRODUCT_ID = path_param("product_id", STR)
SLOT = path_param("slot", {"type": "string", **SLOT_ID_PATTERN})
VERSION = path_param("version", string(32))
FILE_PATH = path_param("path", string(200))
ROLLOUT_ID = path_param("rid", string(40))
MACHINE_AUTH = {
    "name": "X-Machine-Id",
    "in": "header",
    "required": True,
    "schema": string(32, pattern=MACHINE_ID_PATTERN["pattern"]),
    "description": "The machine whose API key is the bearer token (or ?machine_id=)",
}
RANGE = {
    "name": "Range",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "example": "bytes=65536-"},
}
PICK_PARAMS = [
    {
        **query("machine_id", array(STR), "Machines to visit (repeat); none: every machine"),
        "style": "form",
        "explode": True,
    },
    query("location", STR),
]

# What shoppers see of a machine's slots and an order's lines.
PRODUCT_REF = obj({"id": STR, "name": STR, "image_url": NULLABLE_STR})
PUBLIC_SLOTS = array(
    obj(
        {
            "id": {"type": "string", **SLOT_ID_PATTERN},
            "product": PRODUCT_REF,
            "price": LOOSE_PRICE,
            "stock": INT,
            "enabled": BOOL,
        }
    )
)
ORDER_LINES = array(
    obj(
        {
            "slot": STR,
            "product": obj({"id": STR, "name": STR}),
            "quantity": INT,
            "dispensed": INT,
            "unit_amount": INT,
        }
    )
)
ORDER = obj(
    {
        "order_id": STR,
        "machine_id": STR,
        "status": {"enum": list(statuses.ORDER)},
        "quantity": integer(1),
        "dispensed": integer(),
        "amount": integer(),
        "currency": STR,
        "refund": {
            "oneOf": [
                {"type": "null"},
                obj(
                    {
                        "amount": integer(),
                        "status": {"enum": list(statuses.REFUND)},
                        "manual_amount": integer(1),
                        "reason": {
                            "type": "string",
                            "description": "Present when the payment was returned whole "
                            "without a vend: why (late_payment, wrong_amount, "
                            "insufficient_stock)",
                        },
                    },
                    ["amount", "status"],
                ),
            ]
        },
        "lines": ORDER_LINES,
    }
)
FEEDBACK = obj(
    {"rating": {"enum": ["up", "down"]}, "comment": NULLABLE_STR, "created_at": integer()}
)

# The operators' catalogue and planograms.
PRODUCT = obj(
    {
        "id": STR,
        "sku": NULLABLE_STR,
        "name": {"type": "string", "maxLength": 40},
        "image_url": NULLABLE_STR,
        "price": LOOSE_PRICE,
        "active": BOOL,
    }
)
PLANOGRAM = obj(
    {
        "machine_id": STR,
        "version": INT,
        "slots": array(
            obj(
                {
                    "id": STR,
                    "motor": INT,
                    "product": PRODUCT_REF,
                    "price": LOOSE_PRICE,
                    "price_override": NULLABLE_INT,
                    "capacity": INT,
                    "par": INT,
                    "stock": INT,
                    "enabled": BOOL,
                    "sold_out_taps": INT,
                }
            )
        ),
    }
)
PICKLIST = obj(
    {
        "machines": array(STR),
        "location": NULLABLE_STR,
        "products": array(
            obj(
                {
                    "product": obj({"id": STR, "name": STR, "sku": NULLABLE_STR}),
                    "units": INT,
                    "machines": {"type": "object", "additionalProperties": INT},
                }
            )
        ),
        "total": INT,
    }
)
SALES_ROW = obj({"product": obj({"id": STR, "name": STR}), "units": INT, "amount": INT})
SALES = obj(
    {
        "since": INT,
        "until": INT,
        "currency": STR,
        "by_product": array(SALES_ROW),
        "by_slot": array(SALES_ROW),
    }
)

# Users, the audit trail and outgoing webhooks.
USER = obj(
    {
        "username": STR,
        "role": {"enum": list(ROLE_NAMES)},
        "disabled": BOOL,
        "locations": LOCATIONS,
        "created_at": integer(),
    }
)
AUDIT_ENTRY = obj(
    {
        "id": integer(1),
        "at": integer(),
        "actor": STR,
        "action": STR,
        "target": {"type": "string", "description": "kind:id, e.g. machine:lobby-1"},
        "before": {"type": ["object", "null"]},
        "after": {"type": ["object", "null"]},
        "reason": NULLABLE_STR,
    }
)
WEBHOOK_FIELDS = {
    "id": STR,
    "url": STR,
    "events": array({"enum": WEBHOOK_EVENTS}),
    "created_at": integer(),
}
DELIVERY = obj(
    {
        "event_id": STR,
        "type": STR,
        "status": {"enum": list(DELIVERY_STATES)},
        "attempts": integer(),
        "last_status": NULLABLE_INT,
        "last_error": NULLABLE_STR,
        "created_at": integer(),
        "next_at": NULLABLE_INT,
        "delivered_at": NULLABLE_INT,
    }
)

# Firmware releases and rollouts (contract section 6).
RELEASE = obj(
    {
        "version": string(32),
        "signature": string(128, 128),
        "key": string(64, 64),
        "total_bytes": integer(),
        "file_count": integer(1),
        "created_at": integer(),
        "created_by": NULLABLE_STR,
    }
)
ROLLOUT = obj(
    {
        "rollout_id": STR,
        "version": STR,
        "status": {"enum": list(ROLLOUT_STATES)},
        "wave": integer(1),
        "waves": array(integer(1, 100)),
        "max_failure_pct": {"type": "number"},
        "deadline_s": integer(1),
        "created_at": integer(),
        "machines": array(
            obj(
                {
                    "machine_id": STR,
                    "status": {"enum": list(ROLLOUT_MACHINE_STATES)},
                    "error": NULLABLE_STR,
                    "wave": integer(1),
                    "progress": {
                        "oneOf": [{"type": "null"}, obj({"bytes": integer(), "total": integer()})]
                    },
                }
            )
        ),
    }
)
RELEASE_UPLOAD = obj(
    {
        "manifest": {"type": "string", "contentMediaType": "application/json"},
        "signature": string(128, 128),
        "files": {
            "type": "array",
            "items": {"type": "string", "contentMediaType": "application/octet-stream"},
            "description": "each file's part named by its manifest path (its filename)",
        },
    }
)
NEW_ROLLOUT = obj(
    {
        "version": string(32),
        "target": {
            "oneOf": [
                {"const": "all"},
                obj({"machines": array(string(32))}),
                obj({"tag": string(64)}),
            ]
        },
        "waves": {
            "type": "array",
            "items": integer(1, 100),
            "description": "cumulative percentages of the target, increasing, ending at 100",
        },
        "max_failure_pct": {"type": "number", "minimum": 0, "maximum": 100},
        "deadline_s": integer(1),
    },
    ["version"],
)
TAGS = obj({"tags": {"type": "array", "items": string(64), "maxItems": 20}})

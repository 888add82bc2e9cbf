"""The OpenAPI 3.1 description of SmartVend's HTTP API, served at /openapi.json.

Request bodies come from api.http.specs, the same tables the routes parse with;
responses are written here.
"""

from typing import Any

from api.http import specs
from api.http.openapi_slots import ORDER_LINES, PUBLIC_SLOTS, slot_paths
from api.views.reports_window import DATE_PATTERN
from schema import statuses

JSON = "application/json"


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
    }


def _str(max_len: int = 128, min_len: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": min_len, "maxLength": max_len, **extra}


def _int(minimum: int = 0, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


NULLABLE_INT = {"type": ["integer", "null"]}
PRICE = _obj({"amount": _int(), "currency": _str(3, 3)})
ERROR = _obj({"error": _obj({"code": {"type": "string"}, "message": {"type": "string"}})})
MID = {
    "name": "mid",
    "in": "path",
    "required": True,
    "schema": _str(32, pattern="^[A-Za-z0-9_-]{1,32}$"),
}
ORDER_ID = {"name": "order_id", "in": "path", "required": True, "schema": _str(40)}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

ORDER = _obj(
    {
        "order_id": {"type": "string"},
        "machine_id": {"type": "string"},
        "status": {"enum": list(statuses.ORDER)},
        "quantity": _int(1),
        "dispensed": _int(),
        "amount": _int(),
        "currency": {"type": "string"},
        "refund": {
            "oneOf": [
                {"type": "null"},
                _obj(
                    {
                        "amount": _int(),
                        "status": {"enum": list(statuses.REFUND)},
                        "manual_amount": _int(1),
                    },
                    ["amount", "status"],
                ),
            ]
        },
        "lines": ORDER_LINES,
    }
)


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {"description": "error", "content": {JSON: {"schema": ERROR}}} for code in codes
    }


def _op(
    summary: str,
    ok: dict[str, Any] | None,
    *,
    body: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (),
    params: list[dict[str, Any]] | None = None,
    auth: bool = False,
    status: int = 200,
    tag: str = "shopper",
    media: str = JSON,
) -> dict[str, Any]:
    if params and MID in params and 400 not in errors:
        errors = (400, *errors)  # a machine id off its pattern is refused before anything
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            str(status): {
                "description": "success",
                "content": {media: {"schema": ok or {"type": "object"}}},
            },
            **(_errors(400, 413, *errors) if body is not None else _errors(*errors)),
        },
    }
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    if auth:
        op["security"] = BEARER
        op["responses"].update(_errors(401))
    return op


USER = _obj(
    {
        "username": {"type": "string"},
        "role": {"enum": list(specs.ROLE_NAMES)},
        "disabled": {"type": "boolean"},
        "locations": {"type": ["array", "null"], "items": {"type": "string"}},
        "created_at": _int(),
    }
)
AUDIT_ENTRY = _obj(
    {
        "id": _int(1),
        "at": _int(),
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "target": {"type": "string", "description": "kind:id, e.g. machine:lobby-1"},
        "before": {"type": ["object", "null"]},
        "after": {"type": ["object", "null"]},
        "reason": {"type": ["string", "null"]},
    }
)
WEBHOOK = _obj(
    {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "events": {"type": "array", "items": {"enum": specs.WEBHOOK_EVENTS}},
        "created_at": _int(),
    }
)
DELIVERY = _obj(
    {
        "event_id": {"type": "string"},
        "type": {"type": "string"},
        "status": {"enum": ["pending", "delivered", "failed"]},
        "attempts": _int(),
        "last_status": NULLABLE_INT,
        "last_error": {"type": ["string", "null"]},
        "created_at": _int(),
        "next_at": NULLABLE_INT,
        "delivered_at": NULLABLE_INT,
    }
)
REPORT_DATE = _str(10, 10, pattern=DATE_PATTERN)
_FIGURES = {
    "units": _int(),
    "amount": {"type": "integer"},
    "refunded": _int(),
    "net": {"type": "integer"},
    "thumbs_up": _int(),
    "thumbs_down": _int(),
}
REPORT = _obj(
    {
        "period": {"enum": ["day", "week", "month", "range"]},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "since": _int(),
        "until": _int(),
        "timezone": {"type": "string"},
        "group": {"enum": ["machine", "location", "product", "slot"]},
        "currency": {"type": "string"},
        "totals": _obj(_FIGURES),
        "rows": {
            "type": "array",
            "items": _obj(
                {"key": {"type": "string"}, "name": {"type": "string"}, **_FIGURES},
                ["key", "name", *_FIGURES],
            ),
        },
        "bars": {
            "type": "array",
            "items": _obj(
                {
                    "start": _int(),
                    "local": {"type": "string"},
                    "units": _int(),
                    "amount": _int(),
                    "refunded": _int(),
                    "thumbs_up": _int(),
                    "thumbs_down": _int(),
                }
            ),
        },
    }
)
WEBHOOK_ID = {"name": "webhook_id", "in": "path", "required": True, "schema": _str(40)}
USERNAME = {"name": "username", "in": "path", "required": True, "schema": _str(64)}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _operators() -> dict[str, Any]:
    """Section 8: users, the audit trail, prices and refunds (403 ``forbidden`` when the
    caller's role lacks the right)."""
    return {
        "/api/admin/users": {
            "get": _op(
                "Users with their roles and locations (right: users)",
                _obj({"users": {"type": "array", "items": USER}}),
                auth=True,
                errors=(403,),
                tag="admin",
            ),
            "post": _op(
                "Create a user (right: users)",
                USER,
                body=specs.schema(specs.CREATE_USER),
                auth=True,
                status=201,
                errors=(403, 409),
                tag="admin",
            ),
        },
        "/api/admin/users/{username}": {
            "put": _op(
                "Change a user's role, locations or password, or disable them; "
                "409 `last_admin` rather than leave no active admin (right: users)",
                USER,
                params=[USERNAME],
                body=specs.schema(specs.CHANGE_USER),
                auth=True,
                errors=(403, 404, 409),
                tag="admin",
            )
        },
        "/api/audit": {
            "get": _op(
                "The audit trail, newest first (right: read)",
                _obj({"entries": {"type": "array", "items": AUDIT_ENTRY}}),
                params=[
                    _query("since", "Unix seconds", _str(20, 0, pattern="^[0-9]*$")),
                    _query("machine_id", "Only this machine", _str(32, 0)),
                    _query("actor", "Only this user (or cli, setup, system)", _str(64, 0)),
                ],
                auth=True,
                errors=(400, 403, 404),
                tag="admin",
            )
        },
        "/api/reports": {
            "get": _op(
                "Sales of a day, week (Monday to Sunday), month or range (at most 366 days) "
                "of local days, by machine, location, product or slot (right: read; a user "
                "limited to locations sees only theirs)",
                REPORT,
                params=[
                    _query("period", "Default week", {"enum": ["day", "week", "month", "range"]}),
                    _query("date", "A day in the period (default today)", REPORT_DATE),
                    _query("from", "First day of a range", REPORT_DATE),
                    _query("to", "Last day of a range (included)", REPORT_DATE),
                    _query(
                        "group",
                        "Default machine",
                        {"enum": ["machine", "location", "product", "slot"]},
                    ),
                ],
                auth=True,
                errors=(400,),
                tag="admin",
            )
        },
        "/api/machine/{mid}/price": {
            "post": _op(
                "Set a one-slot machine's price (right: prices)",
                _obj({"machine_id": {"type": "string"}, "price": PRICE}),
                params=[MID],
                body=specs.schema(specs.SET_PRICE),
                auth=True,
                errors=(403, 404),
                tag="admin",
            )
        },
        "/api/machine/{mid}": {
            "delete": _op(
                "Decommission a machine: its key stops working, its retained topics are "
                "cleared, it leaves fleet views, its history stays in reports; "
                "409 `machine_busy` during a vend (right: machines)",
                _obj({"machine_id": {"type": "string"}, "removed_at": _int()}),
                params=[MID],
                auth=True,
                errors=(403, 404, 409),
                tag="admin",
            )
        },
        "/api/webhooks": {
            "post": _op(
                "Add an outgoing webhook; its signing secret is shown once (right: users)",
                _obj(
                    {
                        "id": {"type": "string"},
                        "url": {"type": "string"},
                        "events": {"type": "array", "items": {"enum": specs.WEBHOOK_EVENTS}},
                        "created_at": _int(),
                        "secret": {"type": "string"},
                    }
                ),
                body=specs.schema(specs.CREATE_WEBHOOK),
                auth=True,
                status=201,
                errors=(403,),
                tag="admin",
            ),
            "get": _op(
                "Outgoing webhooks (right: users)",
                _obj({"webhooks": {"type": "array", "items": WEBHOOK}}),
                auth=True,
                errors=(403,),
                tag="admin",
            ),
        },
        "/api/webhooks/{webhook_id}": {
            "delete": _op(
                "Delete an outgoing webhook; its delivery log stays (right: users)",
                _obj({"id": {"type": "string"}, "deleted": {"type": "boolean"}}),
                params=[WEBHOOK_ID],
                auth=True,
                errors=(403, 404),
                tag="admin",
            )
        },
        "/api/webhooks/{webhook_id}/deliveries": {
            "get": _op(
                "A webhook's delivery log, newest first (right: users)",
                _obj({"deliveries": {"type": "array", "items": DELIVERY}}),
                params=[WEBHOOK_ID],
                auth=True,
                errors=(403, 404),
                tag="admin",
            )
        },
        "/api/webhooks/{webhook_id}/test": {
            "post": _op(
                "Queue a `test` event to this webhook (right: users)",
                _obj({"event_id": {"type": "string"}}),
                params=[WEBHOOK_ID],
                auth=True,
                status=202,
                errors=(403, 404),
                tag="admin",
            )
        },
        "/api/orders/{order_id}/refund": {
            "post": _op(
                "Refund part or all of what is left of an order's payment, with a reason: "
                "400 `reason_required`, 409 `refund_exceeds_paid` (right: refunds)",
                _obj(
                    {
                        "refund_id": {"type": "string"},
                        "order_id": {"type": "string"},
                        "amount": _int(1),
                        "status": {"enum": list(statuses.REFUND)},
                        "reason": {"type": "string"},
                    }
                ),
                params=[ORDER_ID],
                body=specs.schema(specs.MANUAL_REFUND),
                auth=True,
                status=201,
                errors=(402, 403, 404, 409),
                tag="admin",
            )
        },
    }


def _paths() -> dict[str, Any]:
    lock = _obj(
        {
            "machine_id": {"type": "string"},
            "session_id": {"type": "string"},
            "expires_at": _int(),
            "price": PRICE,
            "max_quantity": _int(),
            "slots": PUBLIC_SLOTS,
        }
    )
    public = _obj(
        {
            "machine_id": {"type": "string"},
            "name": {"type": "string"},
            "online": {"type": "boolean"},
            "mode": {"type": "string"},
            "stock": _int(),
            "price": PRICE,
            "locked": {"type": "boolean"},
            "locked_by_you": {"type": "boolean"},
            "lock_expires_at": NULLABLE_INT,
            "code_on_display": {"type": "boolean"},
            "slots": PUBLIC_SLOTS,
        }
    )
    created = _obj(
        {
            "order_id": {"type": "string"},
            "gateway_order_id": {"type": "string"},
            "amount": _int(),
            "currency": {"type": "string"},
            "key_id": {"type": "string"},
            "gateway": {"enum": ["razorpay", "test"]},
        }
    )
    return {
        "/api/machines": {
            "get": _op(
                "Machines a shopper can find",
                _obj({"machines": {"type": "array", "items": {"type": "object"}}}),
            )
        },
        "/api/machine/{mid}/public-status": {
            "get": _op(
                "A machine as a shopper sees it",
                public,
                errors=(400, 404),
                params=[
                    MID,
                    {"name": "client_id", "in": "query", "required": False, "schema": _str(64, 0)},
                ],
            )
        },
        "/api/lock-by-code": {
            "post": _op(
                "Lock a machine with the code on its display",
                lock,
                body=specs.schema(specs.LOCK_BY_CODE),
                errors=(404, 409, 429, 503),
            )
        },
        "/api/machine/{mid}/unlock": {
            "post": _op(
                "Release your lock",
                _obj({"unlocked": {"type": "boolean"}}),
                params=[MID],
                body=specs.schema(specs.UNLOCK),
                errors=(403, 409),
            )
        },
        "/create-order": {
            "post": _op(
                "Create an order for the locked machine",
                created,
                body=specs.schema(specs.CREATE_ORDER),
                errors=(403, 409, 410, 502),
            )
        },
        "/verify-payment": {
            "post": _op(
                "Prove a payment (Razorpay Checkout's handler result)",
                _obj({"order_id": {"type": "string"}, "status": {"type": "string"}}),
                body=specs.schema(specs.VERIFY_PAYMENT),
                errors=(402, 404, 502),
            )
        },
        "/api/orders/{order_id}": {
            "get": _op("An order's status", ORDER, params=[ORDER_ID], errors=(404,))
        },
        "/api/orders/{order_id}/events": {
            "get": _op(
                "Server-Sent Events: the order on every change (pushed, with a heartbeat "
                "comment); 429 `too_many_streams` or 503 `streams_full` with Retry-After "
                "past the caps on open streams",
                {"type": "string"},
                params=[ORDER_ID],
                errors=(404, 429, 503),
                media="text/event-stream",
            )
        },
        "/api/orders/{order_id}/feedback": {
            "get": _op(
                "This shopper's view of an order's rating: may they rate it, what they gave",
                _obj(
                    {
                        "yours": {"type": "boolean"},
                        "may_rate": {"type": "boolean"},
                        "feedback": {
                            "oneOf": [
                                {"type": "null"},
                                _obj(
                                    {
                                        "rating": {"enum": ["up", "down"]},
                                        "comment": {"type": ["string", "null"]},
                                        "created_at": _int(),
                                    }
                                ),
                            ]
                        },
                    }
                ),
                params=[
                    ORDER_ID,
                    {"name": "client_id", "in": "query", "required": True, "schema": _str(64, 8)},
                ],
                errors=(400, 404),
            ),
            "post": _op(
                "Rate an order that ended (once): thumbs up or down, an optional comment",
                _obj(
                    {
                        "order_id": {"type": "string"},
                        "rating": {"enum": ["up", "down"]},
                        "comment": {"type": ["string", "null"]},
                        "created_at": _int(),
                    }
                ),
                params=[ORDER_ID],
                body=specs.schema(specs.FEEDBACK),
                status=201,
                errors=(403, 404, 409, 429),
            ),
        },
        "/api/webhooks/razorpay": {
            "post": _op(
                "Razorpay webhook (raw body, X-Razorpay-Signature)",
                _obj({"status": {"enum": ["processed", "duplicate"]}}),
                body={"type": "object"},
                errors=(502,),
                tag="gateway",
            )
        },
        "/api/machine/{mid}/trigger-dispense": {
            "post": _op(
                "Older clients: dispense a verified, paid order (once)",
                _obj({"order_id": {"type": "string"}, "status": {"type": "string"}}),
                params=[MID],
                body=specs.schema(specs.TRIGGER_DISPENSE),
                errors=(402,),
            )
        },
        "/api/test-gateway/checkout": {
            "post": _op(
                "Test mode only: complete a payment at the built-in gateway",
                {"type": "object", "additionalProperties": {"type": "string"}},
                body=specs.schema(specs.TEST_CHECKOUT),
                errors=(402,),
                tag="test mode",
            )
        },
        "/api/machine/{mid}/status": {
            "get": _op(
                "Device fallback: desired state and open commands",
                _obj({"desired": {"type": "object"}, "commands": {"type": "array"}}),
                params=[MID],
                auth=True,
                errors=(400, 404),
                tag="device",
            )
        },
        "/api/machine/{mid}/confirm": {
            "post": _op(
                "Device fallback: report a command's units out (idempotent)",
                _obj({"cmd_id": {"type": "string"}, "applied": {"type": "boolean"}}),
                params=[MID],
                body=specs.schema(specs.CONFIRM),
                auth=True,
                errors=(404,),
                tag="device",
            )
        },
        "/api/machine/{mid}/report-error": {
            "post": _op(
                "Device fallback: report an error",
                _obj({"recorded": {"type": "boolean"}}),
                params=[MID],
                body=specs.schema(specs.REPORT_ERROR),
                auth=True,
                errors=(404,),
                tag="device",
            )
        },
        "/api/admin/login": {
            "post": _op(
                "Admin token for scripts (valid one hour)",
                _obj({"token": {"type": "string"}, "expires_in": {"const": 3600}}),
                body=specs.schema(specs.LOGIN),
                errors=(401, 429),
                tag="admin",
            )
        },
        "/api/admin/logout": {
            "post": _op(
                "Log out: every token and dashboard session of this admin stops working",
                _obj({"logged_out": {"type": "boolean"}}),
                auth=True,
                tag="admin",
            )
        },
        "/api/admin/verify": {
            "get": _op(
                "Check a token: who it names, their role and locations",
                _obj(
                    {
                        "username": {"type": "string"},
                        "valid": {"type": "boolean"},
                        "role": {"enum": list(specs.ROLE_NAMES)},
                        "locations": {"type": ["array", "null"], "items": {"type": "string"}},
                    }
                ),
                auth=True,
                tag="admin",
            )
        },
        "/api/machine/register": {
            "post": _op(
                "Register a machine; the API key is shown once",
                _obj({"machine_id": {"type": "string"}, "api_key": {"type": "string"}}),
                body=specs.schema(specs.REGISTER),
                auth=True,
                status=201,
                errors=(403, 409),
                tag="admin",
            )
        },
        "/api/machine/{mid}/update-stock": {
            "post": _op(
                "Set a machine's stock (restock)",
                _obj({"machine_id": {"type": "string"}, "stock": _int(), "capacity": _int()}),
                params=[MID],
                body=specs.schema(specs.UPDATE_STOCK),
                auth=True,
                errors=(403, 404, 409),
                tag="admin",
            )
        },
        "/low-stock-alert": {
            "post": _op(
                "Run the low-stock check now",
                _obj({"alerts": {"type": "array"}}),
                auth=True,
                errors=(403,),
                tag="admin",
            )
        },
    }


def openapi_document() -> dict[str, Any]:
    from api.http.firmware_openapi import firmware_paths  # it builds on the helpers above

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SmartVend API",
            "version": "1.0.0",
            "description": "Shoppers lock a machine by its display code, pay online and "
            "the machine dispenses. Errors are "
            '{"error": {"code", "message"}} with a real status.',
        },
        "paths": {**_paths(), **firmware_paths(), **slot_paths(_op, MID), **_operators()},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }

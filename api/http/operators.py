"""The operators' JSON API: users and roles, the audit trail, prices and refunds.

Each route names the right it needs (``@needs``); a user limited to locations
reaches only machines at those locations (``in_scope``).
"""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import InvalidRequest, ReasonRequired
from api.http import body as b
from api.http import specs
from api.http.deps import needs, principal, runtime, services
from api.http.route_table import ADMIN, route
from api.http.shapes import (
    AUDIT_ENTRY,
    BOOL,
    DELIVERY,
    MID,
    ORDER_ID,
    PRICE,
    STR,
    USER,
    USERNAME,
    WEBHOOK_FIELDS,
    WEBHOOK_ID,
    array,
    integer,
    obj,
    query,
    string,
)
from api.http.shopper import machine_id
from api.services import admins, audit, webhooks_out
from api.services.audit import AuditFilter
from api.services.rights import Principal, Right
from api.views import reports, reports_window
from api.views.reports import Reports
from schema import statuses, topics


async def in_scope(request: Request, who: Principal, mid: str) -> None:
    """Forbidden unless ``who`` may touch machine ``mid`` (MachineNotFound if none)."""
    if who.locations is not None:
        row = await services(request).admin_views.machine(mid)
        who.check_machine(mid, row.location)


@needs(Right.USERS)
async def list_users(request: Request) -> Response:
    users = await services(request).admins.users()
    return JSONResponse({"users": [admins.as_json(u) for u in users]})


@needs(Right.USERS)
async def create_user(request: Request) -> Response:
    body = await specs.read(request, specs.CREATE_USER)
    user = await services(request).admins.create(
        body["username"],
        body["password"],
        body["role"],
        body["locations"],
        by=principal(request).username,
    )
    return JSONResponse(admins.as_json(user), status_code=201)


@needs(Right.USERS)
async def change_user(request: Request) -> Response:
    raw = await b.json_object(request)
    body = specs.parse(specs.CHANGE_USER, raw)
    change = admins.UserChange(
        role=body["role"],
        disabled=body["disabled"],
        password=body["password"],
        locations=body["locations"],
        locations_set="locations" in raw,
    )
    username = str(request.path_params["username"])
    user = await services(request).admins.change(username, change, by=principal(request).username)
    return JSONResponse(admins.as_json(user))


AUDIT_FILTERS = frozenset({"since", "machine_id", "actor"})


def _since(request: Request) -> int | None:
    text = b.query_text(request, "since", max_len=20)
    if not text:
        return None
    if not text.isdigit():
        raise InvalidRequest("since must be Unix seconds")
    return int(text)


@needs(Right.READ)
async def audit_entries(request: Request) -> Response:
    who = principal(request)
    b.only_params(request, AUDIT_FILTERS)
    mid = b.query_text(request, "machine_id", max_len=32) or None
    if mid is not None:
        if not topics.is_machine_id(mid):
            raise InvalidRequest("machine_id must match [A-Za-z0-9_-]{1,32}")
        await in_scope(request, who, mid)
    actor = b.query_text(request, "actor", max_len=64) or None
    if actor is not None and not actor.isprintable():
        raise InvalidRequest("actor must be a username")
    where = AuditFilter(
        since=_since(request),
        machine_id=mid,
        actor=actor,
    )
    entries = await services(request).audit.entries(where)
    if who.locations is not None and mid is None:
        seen = await _machines_in_scope(request, who)
        entries = [e for e in entries if e.machine_id in seen]
    return JSONResponse({"entries": [audit.as_json(e) for e in entries]})


async def _machines_in_scope(request: Request, who: Principal) -> set[str | None]:
    rows = await services(request).admin_views.fleet()
    return {r.machine_id for r in rows if who.sees(r.location)}


@needs(Right.PRICES)
async def set_price(request: Request) -> Response:
    mid = machine_id(request)
    await in_scope(request, principal(request), mid)
    body = await specs.read(request, specs.SET_PRICE)
    if body["price"]["currency"] != "INR":
        raise InvalidRequest("price.currency must be INR")
    machine = await services(request).machines.set_price(
        mid, body["price"]["amount"], by=principal(request).username
    )
    price = {"amount": machine.price_amount, "currency": machine.currency}
    return JSONResponse({"machine_id": machine.id, "price": price})


@needs(Right.REFUNDS)
async def refund(request: Request) -> Response:
    order_id = str(request.path_params["order_id"])
    body = await specs.read(request, specs.MANUAL_REFUND)
    reason = body["reason"].strip()
    if not reason:
        raise ReasonRequired("say why you refund: reason is required")
    detail = await services(request).order_views.detail(order_id)
    await in_scope(request, principal(request), detail.order.machine_id)
    made = await services(request).manual_refunds.refund(
        order_id, body["amount"], by=principal(request).username, reason=reason
    )
    return JSONResponse(
        {
            "refund_id": made.id,
            "order_id": order_id,
            "amount": made.amount,
            "status": made.status,
            "reason": reason,
        },
        status_code=201,
    )


@needs(Right.MACHINES)
async def remove_machine(request: Request) -> Response:
    mid = machine_id(request)
    await in_scope(request, principal(request), mid)
    machine = await services(request).machines.remove(mid, by=principal(request).username)
    await runtime(request).disconnect(mid)  # its open connection ends with its key
    return JSONResponse({"machine_id": machine.id, "removed_at": machine.removed_at})


@needs(Right.USERS)
async def create_webhook(request: Request) -> Response:
    body = await specs.read(request, specs.CREATE_WEBHOOK)
    hook = await services(request).outgoing_webhooks.create(
        body["url"], body["events"], by=principal(request).username
    )
    return JSONResponse({**webhooks_out.as_json(hook), "secret": hook.secret}, status_code=201)


@needs(Right.USERS)
async def list_webhooks(request: Request) -> Response:
    hooks = await services(request).outgoing_webhooks.active()
    return JSONResponse({"webhooks": [webhooks_out.as_json(h) for h in hooks]})


@needs(Right.USERS)
async def delete_webhook(request: Request) -> Response:
    webhook_id = str(request.path_params["webhook_id"])
    await services(request).outgoing_webhooks.remove(webhook_id, by=principal(request).username)
    return JSONResponse({"id": webhook_id, "deleted": True})


@needs(Right.USERS)
async def webhook_deliveries(request: Request) -> Response:
    webhook_id = str(request.path_params["webhook_id"])
    found = await services(request).outgoing_webhooks.deliveries(webhook_id)
    return JSONResponse({"deliveries": [webhooks_out.delivery_json(d) for d in found]})


@needs(Right.USERS)
async def test_webhook(request: Request) -> Response:
    webhook_id = str(request.path_params["webhook_id"])
    event_id = await services(request).outgoing_webhooks.send_test(
        webhook_id, by=principal(request).username
    )
    return JSONResponse({"event_id": event_id}, status_code=202)


@needs(Right.READ)
async def sales_report(request: Request) -> Response:
    """Sales of a day, week, month or range of local days, by machine, location or
    product; a user limited to locations sees only theirs."""
    b.only_params(request, reports_window.QUERY_NAMES)
    ctx = services(request).ctx
    window, group = reports_window.from_query(
        dict(request.query_params), ctx.calendar, ctx.clock.now()
    )
    found = await Reports(ctx).summary(window, group, principal(request).locations)
    return JSONResponse(reports.as_json(found, ctx.calendar))


REPORT_DATE = string(10, 10, pattern=reports_window.DATE_PATTERN)
PERIODS = {"enum": ["day", "week", "month", "range"]}
GROUPS = {"enum": ["machine", "location", "product", "slot"]}
_FIGURES = {
    "units": integer(),
    "amount": {"type": "integer"},
    "refunded": integer(),
    "net": {"type": "integer"},
    "thumbs_up": integer(),
    "thumbs_down": integer(),
}
REPORT = obj(
    {
        "period": PERIODS,
        "from": STR,
        "to": STR,
        "since": integer(),
        "until": integer(),
        "timezone": STR,
        "group": GROUPS,
        "currency": STR,
        "totals": obj(_FIGURES),
        "rows": array(obj({"key": STR, "name": STR, **_FIGURES})),
        "bars": array(
            obj(
                {
                    "start": integer(),
                    "local": STR,
                    "units": integer(),
                    "amount": integer(),
                    "refunded": integer(),
                    "thumbs_up": integer(),
                    "thumbs_down": integer(),
                }
            )
        ),
    }
)

routes = [
    route(
        "GET",
        "/api/admin/users",
        list_users,
        summary="Users with their roles and locations (right: users)",
        ok=obj({"users": array(USER)}),
        errors=(403,),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/admin/users",
        create_user,
        summary="Create a user (right: users)",
        ok=USER,
        body=specs.CREATE_USER,
        status=201,
        errors=(403, 409),
        **ADMIN,
    ),
    route(
        "PUT",
        "/api/admin/users/{username}",
        change_user,
        summary="Change a user's role, locations or password, or disable them; "
        "409 `last_admin` rather than leave no active admin (right: users)",
        ok=USER,
        params=[USERNAME],
        body=specs.CHANGE_USER,
        errors=(403, 404, 409),
        **ADMIN,
    ),
    route(
        "GET",
        "/api/audit",
        audit_entries,
        summary="The audit trail, newest first (right: read)",
        ok=obj({"entries": array(AUDIT_ENTRY)}),
        params=[
            query("since", string(20, 0, pattern="^[0-9]*$"), "Unix seconds"),
            query("machine_id", string(32, 0), "Only this machine"),
            query("actor", string(64, 0), "Only this user (or cli, setup, system)"),
        ],
        errors=(400, 403, 404),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/machine/{mid}/price",
        set_price,
        summary="Set a one-slot machine's price (right: prices)",
        ok=obj({"machine_id": STR, "price": PRICE}),
        params=[MID],
        body=specs.SET_PRICE,
        errors=(403, 404),
        **ADMIN,
    ),
    route(
        "DELETE",
        "/api/machine/{mid}",
        remove_machine,
        summary="Decommission a machine: its key stops working, its retained topics are "
        "cleared, it leaves fleet views, its history stays in reports; "
        "409 `machine_busy` during a vend (right: machines)",
        ok=obj({"machine_id": STR, "removed_at": integer()}),
        params=[MID],
        errors=(403, 404, 409),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/orders/{order_id}/refund",
        refund,
        summary="Refund part or all of what is left of an order's payment, with a reason: "
        "400 `reason_required`, 409 `refund_exceeds_paid` (right: refunds)",
        ok=obj(
            {
                "refund_id": STR,
                "order_id": STR,
                "amount": integer(1),
                "status": {"enum": list(statuses.REFUND)},
                "reason": STR,
            }
        ),
        params=[ORDER_ID],
        body=specs.MANUAL_REFUND,
        status=201,
        errors=(402, 403, 404, 409),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/webhooks",
        create_webhook,
        summary="Add an outgoing webhook; its signing secret is shown once (right: users)",
        ok=obj({**WEBHOOK_FIELDS, "secret": STR}),
        body=specs.CREATE_WEBHOOK,
        status=201,
        errors=(403,),
        **ADMIN,
    ),
    route(
        "GET",
        "/api/webhooks",
        list_webhooks,
        summary="Outgoing webhooks (right: users)",
        ok=obj({"webhooks": array(obj(WEBHOOK_FIELDS))}),
        errors=(403,),
        **ADMIN,
    ),
    route(
        "DELETE",
        "/api/webhooks/{webhook_id}",
        delete_webhook,
        summary="Delete an outgoing webhook; its delivery log stays (right: users)",
        ok=obj({"id": STR, "deleted": BOOL}),
        params=[WEBHOOK_ID],
        errors=(403, 404),
        **ADMIN,
    ),
    route(
        "GET",
        "/api/webhooks/{webhook_id}/deliveries",
        webhook_deliveries,
        summary="A webhook's delivery log, newest first (right: users)",
        ok=obj({"deliveries": array(DELIVERY)}),
        params=[WEBHOOK_ID],
        errors=(403, 404),
        **ADMIN,
    ),
    route(
        "POST",
        "/api/webhooks/{webhook_id}/test",
        test_webhook,
        summary="Queue a `test` event to this webhook (right: users)",
        ok=obj({"event_id": STR}),
        params=[WEBHOOK_ID],
        status=202,
        errors=(403, 404),
        **ADMIN,
    ),
    route(
        "GET",
        "/api/reports",
        sales_report,
        summary="Sales of a day, week (Monday to Sunday), month or range (at most 366 days) "
        "of local days, by machine, location, product or slot (right: read; a user "
        "limited to locations sees only theirs)",
        ok=REPORT,
        params=[
            query("period", PERIODS, "Default week"),
            query("date", REPORT_DATE, "A day in the period (default today)"),
            query("from", REPORT_DATE, "First day of a range"),
            query("to", REPORT_DATE, "Last day of a range (included)"),
            query("group", GROUPS, "Default machine"),
        ],
        errors=(400, 403),
        **ADMIN,
    ),
]

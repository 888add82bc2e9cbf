"""The shopper's API (CONTRACT section 2): decode, call one service, encode."""

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import InvalidRequest, PaymentFailed
from api.http import body as b
from api.http import specs, streams
from api.http.contention import retried
from api.http.deps import services, settings, source_address
from api.http.route_table import route
from api.http.shapes import (
    BOOL,
    FEEDBACK,
    JSON,
    MID,
    NULLABLE_INT,
    ORDER,
    ORDER_ID,
    PRICE,
    PUBLIC_SLOTS,
    STR,
    array,
    integer,
    obj,
    query,
    string,
)
from api.infra.changes_from_commits import order_channel
from api.lifecycle.decide import shopper_done
from api.payments.test_gateway import TestGateway
from schema import topics


def machine_id(request: Request) -> str:
    mid = request.path_params["mid"]
    if not topics.is_machine_id(mid):
        raise InvalidRequest("machine id must match [A-Za-z0-9_-]{1,32}")
    return str(mid)


async def public_status(request: Request) -> Response:
    client_id = b.query_text(request, "client_id", max_len=64)
    views, dev = services(request).views, settings(request).dev
    return JSONResponse(
        await views.public_status(machine_id(request), client_id, simulated_display=dev)
    )


async def machines(request: Request) -> Response:
    return JSONResponse({"machines": await services(request).views.fleet()})


async def lock_by_code(request: Request) -> Response:
    body = await specs.read(request, specs.LOCK_BY_CODE)
    locks = services(request).locks
    lock = await retried(
        "lock-by-code",
        lambda: locks.lock_by_code(
            body["code"], body["client_id"], body["machine_id"], source=source_address(request)
        ),
    )
    return JSONResponse(
        {
            "machine_id": lock.machine_id,
            "session_id": lock.session_id,
            "expires_at": lock.expires_at,
            "price": lock.price,
            "max_quantity": lock.max_quantity,
            "slots": lock.slots,
        }
    )


async def unlock(request: Request) -> Response:
    body = await specs.read(request, specs.UNLOCK)
    locks, mid = services(request).locks, machine_id(request)
    await retried("unlock", lambda: locks.unlock(mid, body["client_id"], body["session_id"]))
    return JSONResponse({"unlocked": True})


async def extend(request: Request) -> Response:
    """Keep the machine while checkout is open (api.services.reservation)."""
    body = await specs.read(request, specs.EXTEND)
    reservations, mid = services(request).reservations, machine_id(request)
    hold = await retried(
        "extend", lambda: reservations.extend(mid, body["client_id"], body["session_id"])
    )
    return JSONResponse(
        {
            "machine_id": hold.machine_id,
            "session_id": hold.session_id,
            "expires_at": hold.expires_at,
            "hold_until": hold.hold_until,
        }
    )


async def create_order(request: Request) -> Response:
    body = await specs.read(request, specs.CREATE_ORDER)
    orders = services(request).orders
    created = await retried(
        "create-order",
        lambda: orders.create(
            body["session_id"], body["client_id"], body.get("quantity"), body.get("items")
        ),
    )
    return JSONResponse(
        {
            "order_id": created.order_id,
            "gateway_order_id": created.gateway_order_id,
            "amount": created.amount,
            "currency": created.currency,
            "key_id": created.key_id,
            "gateway": created.gateway,
        }
    )


async def verify_payment(request: Request) -> Response:
    body = await specs.read(request, specs.VERIFY_PAYMENT)
    orders = services(request).orders
    order = await retried(
        "verify-payment",
        lambda: orders.verify(
            body["razorpay_order_id"], body["razorpay_payment_id"], body["razorpay_signature"]
        ),
    )
    return JSONResponse({"order_id": order.id, "status": order.status})


async def order_status(request: Request) -> Response:
    return JSONResponse(await services(request).orders.view(str(request.path_params["order_id"])))


async def my_feedback(request: Request) -> Response:
    client_id = request.query_params.get("client_id", "")
    order_id = str(request.path_params["order_id"])[:64]
    return JSONResponse(await services(request).feedback.mine(order_id, client_id))


async def order_feedback(request: Request) -> Response:
    body = await specs.read(request, specs.FEEDBACK)
    feedback = await services(request).feedback.give(
        str(request.path_params["order_id"])[:64],
        body["client_id"],
        body["rating"],
        body["comment"] or None,
        source=source_address(request),
    )
    return JSONResponse(
        {
            "order_id": feedback.order_id,
            "rating": feedback.rating,
            "comment": feedback.comment,
            "created_at": feedback.created_at,
        },
        status_code=201,
    )


async def order_events(request: Request) -> Response:
    """Server-Sent Events: the order each time it changes, until it ends.

    Pushed when a transaction touching the order commits; no polling.
    """
    orders = services(request).orders
    order_id = str(request.path_params["order_id"])
    with streams.opened(request, order_channel(order_id)) as (feed, held):
        first = await orders.view(order_id)  # 404 before the stream starts
        release = held.pop_all().close

    async def stream() -> AsyncIterator[str]:
        view = first
        while True:
            yield f"event: order\ndata: {json.dumps(view)}\n\n"
            if _ended(view):
                return
            async for changed in feed:
                if not changed:
                    yield ": keep-alive\n\n"
                    continue
                latest = await orders.view(order_id)
                if latest != view:
                    view = latest
                    break
            else:
                return  # the server is shutting down; the page reconnects

    return streams.LiveStream(stream(), on_close=release)


def _ended(view: dict[str, Any]) -> bool:
    refund = view["refund"]
    return shopper_done(view["status"], None if refund is None else refund["status"])


async def razorpay_webhook(request: Request) -> Response:
    raw = await b.read_body(request)
    svc = services(request)
    event = svc.gateway.parse_webhook(
        raw,
        request.headers.get("x-razorpay-signature", ""),
        event_id=request.headers.get("x-razorpay-event-id"),
    )
    acted = await retried("webhook", lambda: svc.webhooks.handle(event))
    return JSONResponse({"status": "processed" if acted else "duplicate"})


async def trigger_dispense(request: Request) -> Response:
    body = await specs.read(request, specs.TRIGGER_DISPENSE)
    order = await services(request).orders.trigger(
        machine_id(request), body["order_id"], body["client_id"]
    )
    return JSONResponse({"order_id": order.id, "status": order.status})


async def test_checkout(request: Request) -> Response:
    """The built-in test gateway's checkout: the shopper chooses to pay or fail."""
    gateway = services(request).gateway
    if not isinstance(gateway, TestGateway):
        raise InvalidRequest("test checkout is off: live payments are configured")
    body = await specs.read(request, specs.TEST_CHECKOUT)
    proof = await gateway.checkout(body["gateway_order_id"], succeed=body["outcome"] == "pay")
    if "error" in proof:
        raise PaymentFailed("the test payment failed, as chosen; nothing was charged")
    return JSONResponse(proof)


LOCK = obj(
    {
        "machine_id": STR,
        "session_id": STR,
        "expires_at": integer(),
        "price": PRICE,
        "max_quantity": integer(),
        "slots": PUBLIC_SLOTS,
    }
)
PUBLIC = obj(
    {
        "machine_id": STR,
        "name": STR,
        "online": BOOL,
        "mode": STR,
        "stock": integer(),
        "price": PRICE,
        "locked": BOOL,
        "locked_by_you": BOOL,
        "lock_expires_at": NULLABLE_INT,
        "code_on_display": BOOL,
        "slots": PUBLIC_SLOTS,
        "display_code": {
            "type": ["string", "null"],
            "description": "Dev mode only, simulated machines only: what the display shows",
        },
    },
    [
        "machine_id",
        "name",
        "online",
        "mode",
        "stock",
        "price",
        "locked",
        "locked_by_you",
        "lock_expires_at",
        "code_on_display",
        "slots",
    ],
)
CREATED = obj(
    {
        "order_id": STR,
        "gateway_order_id": STR,
        "amount": integer(),
        "currency": STR,
        "key_id": STR,
        "gateway": {"enum": ["razorpay", "test"]},
    }
)
ORDER_STATUS = obj({"order_id": STR, "status": STR})

routes = [
    route(
        "GET",
        "/api/machines",
        machines,
        summary="Machines a shopper can find",
        ok=obj({"machines": array({"type": "object"})}),
    ),
    route(
        "GET",
        "/api/machine/{mid}/public-status",
        public_status,
        summary="A machine as a shopper sees it",
        ok=PUBLIC,
        params=[MID, query("client_id", string(64, 0))],
        errors=(400, 404),
    ),
    route(
        "POST",
        "/api/lock-by-code",
        lock_by_code,
        summary="Lock a machine with the code on its display",
        ok=LOCK,
        body=specs.LOCK_BY_CODE,
        errors=(404, 409, 429, 503),
    ),
    route(
        "POST",
        "/api/machine/{mid}/unlock",
        unlock,
        summary="Release your lock",
        ok=obj({"unlocked": BOOL}),
        params=[MID],
        body=specs.UNLOCK,
        errors=(403, 409),
    ),
    route(
        "POST",
        "/api/machine/{mid}/extend",
        extend,
        summary="Keep your reservation while checkout is open: each call moves its end "
        "to 90 s from now, at most 180 s past LOCK_TTL_S from the unlock "
        "(`hold_until`); 403 `not_lock_owner`, 409 `checkout_not_open` (no "
        "payment waiting on the lock), 410 `session_expired`",
        ok=obj(
            {
                "machine_id": STR,
                "session_id": STR,
                "expires_at": integer(),
                "hold_until": integer(),
            }
        ),
        params=[MID],
        body=specs.EXTEND,
        errors=(403, 409, 410),
    ),
    route(
        "POST",
        "/create-order",
        create_order,
        summary="Create an order for the locked machine",
        ok=CREATED,
        body=specs.CREATE_ORDER,
        errors=(403, 409, 410, 502),
    ),
    route(
        "POST",
        "/verify-payment",
        verify_payment,
        summary="Prove a payment (Razorpay Checkout's handler result)",
        ok=ORDER_STATUS,
        body=specs.VERIFY_PAYMENT,
        errors=(402, 404, 502),
    ),
    route(
        "GET",
        "/api/orders/{order_id}",
        order_status,
        summary="An order's status",
        ok=ORDER,
        params=[ORDER_ID],
        errors=(404,),
    ),
    route(
        "GET",
        "/api/orders/{order_id}/events",
        order_events,
        summary="Server-Sent Events: the order on every change (pushed, with a heartbeat "
        "comment); 429 `too_many_streams` or 503 `streams_full` with Retry-After "
        "past the caps on open streams",
        ok=STR,
        params=[ORDER_ID],
        errors=(404, 429, 503),
        media="text/event-stream",
    ),
    route(
        "POST",
        "/api/orders/{order_id}/feedback",
        order_feedback,
        summary="Rate an order that ended (once): thumbs up or down, an optional comment",
        ok=obj({"order_id": STR, **FEEDBACK["properties"]}),
        params=[ORDER_ID],
        body=specs.FEEDBACK,
        status=201,
        errors=(403, 404, 409, 429),
    ),
    route(
        "GET",
        "/api/orders/{order_id}/feedback",
        my_feedback,
        summary="This shopper's view of an order's rating: may they rate it, what they gave",
        ok=obj(
            {
                "yours": BOOL,
                "may_rate": BOOL,
                "feedback": {"oneOf": [{"type": "null"}, FEEDBACK]},
            }
        ),
        params=[ORDER_ID, query("client_id", string(64, 8), required=True)],
        errors=(400, 404),
    ),
    route(
        "POST",
        "/api/webhooks/razorpay",
        razorpay_webhook,
        summary="Razorpay webhook (raw body, X-Razorpay-Signature)",
        ok=obj({"status": {"enum": ["processed", "duplicate"]}}),
        raw_body=(JSON, {"type": "object"}),
        errors=(502,),
        tag="gateway",
    ),
    route(
        "POST",
        "/api/machine/{mid}/trigger-dispense",
        trigger_dispense,
        summary="Older clients: dispense a verified, paid order (once)",
        ok=ORDER_STATUS,
        params=[MID],
        body=specs.TRIGGER_DISPENSE,
        errors=(402,),
    ),
    route(
        "POST",
        "/api/test-gateway/checkout",
        test_checkout,
        summary="Test mode only: complete a payment at the built-in gateway",
        ok={"type": "object", "additionalProperties": STR},
        body=specs.TEST_CHECKOUT,
        errors=(402,),
        tag="test mode",
    ),
]

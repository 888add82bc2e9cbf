"""The shopper's pages: find a machine, lock it, pay, watch the vend.

Each page renders what the server knows at once (fast, readable without
JavaScript), then small scripts in ``static/js`` call the JSON API.
"""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from api.errors import MachineNotFound, OrderNotFound
from api.http.deps import services, settings
from api.payments.test_gateway import TestGateway
from schema import topics
from web.templating import not_found, render

MAX_ORDER_ID = 64


async def home(request: Request) -> Response:
    machines = await services(request).views.fleet()
    return render(request, "home.html", {"machines": machines}, no_store=True)


def _unknown_machine(request: Request, mid: str) -> Response:
    return not_found(
        request,
        "Machine not found",
        f"We can't find machine “{mid}”. Scan the QR code on the machine again, "
        "or find it in the list.",
    )


async def machine(request: Request) -> Response:
    mid = str(request.path_params["mid"])
    if not topics.is_machine_id(mid):
        return _unknown_machine(request, mid[:40])
    svc = services(request)
    try:
        # In dev mode (make run) nobody stands in front of the simulated machines:
        # their status says what their displays show.
        status = await svc.views.public_status(mid, "", simulated_display=settings(request).dev)
    except MachineNotFound:
        return _unknown_machine(request, mid)
    razorpay = svc.gateway.name == "razorpay"
    return render(
        request,
        "machine.html",
        {
            "m": status,
            "razorpay": razorpay,
            "demo": "display_code" in status,
            "max_quantity": svc.ctx.policy.max_quantity,
        },
        no_store=True,
        strict=not razorpay,
    )


async def test_checkout(request: Request) -> Response:
    svc = services(request)
    gateway_order_id = str(request.path_params["gateway_order_id"])
    if not isinstance(svc.gateway, TestGateway):
        return not_found(
            request,
            "No test checkout",
            "Test payments are switched off here: this site takes real payments.",
        )
    try:
        if len(gateway_order_id) > MAX_ORDER_ID:
            raise OrderNotFound("no such order")
        order = await svc.orders.get_order(None, gateway_order_id)
    except OrderNotFound:
        return not_found(
            request,
            "Payment not found",
            "This payment link is unknown or has been replaced by a newer one.",
        )
    return render(
        request,
        "checkout_test.html",
        {
            "order": order,
            "gateway_order_id": gateway_order_id,
            # The time to pay, as Razorpay's checkout gets it (api.services.reservation).
            "hold": await svc.reservations.of_order(order.session_id),
        },
        no_store=True,
    )


async def order_page(request: Request) -> Response:
    svc = services(request)
    order_id = str(request.path_params["order_id"])
    try:
        if len(order_id) > MAX_ORDER_ID:
            raise OrderNotFound("no such order")
        order = await svc.orders.view(order_id)
    except OrderNotFound:
        return not_found(
            request,
            "Order not found",
            "We can't find this order. Check the link, or start again at a machine.",
        )
    try:
        machine_name = (await svc.views.public_status(order["machine_id"], ""))["name"]
    except MachineNotFound:
        machine_name = order["machine_id"]
    return render(
        request, "order.html", {"order": order, "machine_name": machine_name}, no_store=True
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/m/{mid}", machine, methods=["GET"]),
        Route("/checkout/test/{gateway_order_id}", test_checkout, methods=["GET"]),
        Route("/orders/{order_id}", order_page, methods=["GET"]),
    ]

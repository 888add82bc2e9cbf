"""Orders: filtered lists, one order's timeline, a manual refund, CSV export."""

import datetime as dt
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from api.clock import LocalCalendar
from api.errors import InvalidRequest
from api.http.deps import services
from api.lifecycle.states import ORDER_FINAL, RefundStatus
from api.services import refund_totals
from api.services.audit import AuditFilter
from api.services.rights import Right
from api.views.orders import STATUSES, OrderDetail, OrderFilter, OrderRow
from web.admin import spreadsheet
from web.admin.forms import FieldErrors, rupees
from web.admin.guard import admin_page, field
from web.admin.templating import SECURITY_HEADERS, money, render

PAGE = 50
CSV_COLUMNS = (
    "order_id",
    "machine_id",
    "machine_name",
    "created_at",
    "paid_at",
    "status",
    "quantity",
    "dispensed",
    "unit_price",
    "amount",
    "currency",
    "amount_paise",
    "refunded",
    "refunded_paise",
    "refund_status",
    "refund_reason",
    "rating",
    "gateway",
    "gateway_order_id",
)


def _date(calendar: LocalCalendar, text: str, label: str) -> int | None:
    """A date typed in a filter, as the local midnight that starts it."""
    if not text:
        return None
    try:
        return calendar.midnight(dt.date.fromisoformat(text))
    except ValueError as exc:
        raise InvalidRequest(f"{label}: a date like 2026-11-02") from exc


def filters(request: Request) -> tuple[OrderFilter, dict[str, str], dict[str, str]]:
    """The orders' filter from the query, what was typed (kept on the page), and one
    message per field that could not be read (that filter is then left out)."""
    q = {k: request.query_params.get(k, "")[:40] for k in ("machine", "status", "from", "to")}
    calendar = services(request).ctx.calendar
    errors = FieldErrors()
    start = errors.read("from", lambda: _date(calendar, q["from"], "From"))
    end = errors.read("to", lambda: _date(calendar, q["to"], "To"))
    status = q["status"] or None
    if status is not None and status not in STATUSES:
        errors.add("status", "Choose a status from the list.")
        status = None
    if start is not None and end is not None and end < start:
        errors.add("to", "The end date must not come before the start date.")
        end = None
    where = OrderFilter(
        machine_text=q["machine"].strip() or None,
        status=status,
        start=start,
        end=None if end is None else calendar.next_day(end),
        locations=request.state.principal.locations,
    )
    return where, q, errors.messages


REASON_MAX = 300


@admin_page
async def order_list(request: Request) -> Response:
    where, q, errors = filters(request)
    page = request.query_params.get("page", "1")
    number = int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1
    rows = await services(request).order_views.page(
        where, limit=PAGE + 1, offset=(number - 1) * PAGE
    )
    query = urlencode({k: v for k, v in q.items() if v})
    return render(
        request,
        "admin/orders.html",
        {
            "rows": rows[:PAGE],
            "q": q,
            "statuses": STATUSES,
            "page": number,
            "more": len(rows) > PAGE,
            "filter_query": query,
            "errors": errors,
        },
        400 if errors else 200,
    )


@admin_page
async def order_detail(request: Request) -> Response:
    detail = await services(request).order_views.detail(str(request.path_params["oid"]))
    done = request.query_params.get("done") == "refund"
    return await _order_page(request, detail, done=done)


async def _order_page(
    request: Request,
    detail: OrderDetail,
    *,
    done: bool = False,
    error: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    feedback = await services(request).feedback_views.of_order(detail.order.id)
    reasons = await services(request).audit.entries(
        AuditFilter(action="refund_issued", target=f"order:{detail.order.id}")
    )
    return render(
        request,
        "admin/order.html",
        {
            "d": detail,
            "o": detail.order,
            "done": done,
            "error": error,
            "values": values or {},
            "feedback": feedback,
            "live_state": live_state(detail),
            "settled": settled(detail),
            "refund_notes": list(reversed(reasons)),
        },
        status,
    )


def live_state(detail: OrderDetail) -> str:
    """What the page shows, in the terms of the order's live events (GET /api/orders/{id}):
    the page refreshes its parts when the events say something else."""
    o = detail.order
    total = refund_totals.total(detail.refunds)
    refund = "" if total is None else f"{total.amount}:{total.status}"
    return f"{o.status}|{o.dispensed}|{refund}"


def settled(detail: OrderDetail) -> bool:
    """Nothing left to change by itself: the vend is over and no refund is on its way."""
    pending = any(r.status == RefundStatus.PENDING for r in detail.refunds)
    return not pending and detail.order.status in ORDER_FINAL


def _chosen_amount(request: Request, detail: OrderDetail) -> int:
    """The amount the operator picked, in paise; nothing is picked for them."""
    choice = field(request, "amount_choice", 20)
    if choice == "undispensed":
        return min(detail.undispensed_amount, detail.refund_room)
    if choice == "rest":
        return detail.refund_room
    if choice == "custom":
        return rupees(request, "amount", "The amount")
    raise InvalidRequest("Choose how much to refund.")


@admin_page(right=Right.REFUNDS)
async def refund(request: Request) -> Response:
    """Two steps: choose an amount and review it, then confirm; only the confirmation refunds."""
    oid = str(request.path_params["oid"])
    views = services(request).order_views
    detail = await views.detail(oid)
    reason = field(request, "reason", REASON_MAX)
    if field(request, "step", 10) == "confirm":
        amount = field(request, "paise", 12)
        if not amount.isdigit():
            raise InvalidRequest("The confirmed amount is missing; choose the refund again.")
        if not reason or len(reason) > REASON_MAX:
            raise InvalidRequest("Say why you refund (up to 300 characters); choose again.")
        await services(request).manual_refunds.refund(
            oid, int(amount), by=request.state.admin, reason=reason
        )
        return RedirectResponse(f"/admin/orders/{oid}?done=refund", status_code=303)
    values = {k: field(request, k, 20) for k in ("amount_choice", "amount")}
    values["reason"] = reason
    try:
        amount_paise = _chosen_amount(request, detail)
        if not detail.refundable:
            raise InvalidRequest("This order cannot be refunded now.")
        if not 1 <= amount_paise <= detail.refund_room:
            raise InvalidRequest(
                f"Refund from ₹0.01 to {money(detail.refund_room, detail.order.currency)}."
            )
        if not reason:
            raise InvalidRequest("Say why you refund: the reason is kept in the audit trail.")
        if len(reason) > REASON_MAX:
            raise InvalidRequest(f"The reason is longer than {REASON_MAX} characters.")
    except InvalidRequest as exc:
        return await _order_page(request, detail, error=exc.message, values=values, status=400)
    return render(
        request,
        "admin/refund_confirm.html",
        {"d": detail, "o": detail.order, "amount": amount_paise, "reason": reason},
    )


def _csv_row(r: OrderRow, calendar: LocalCalendar) -> tuple[object, ...]:
    return (
        r.order_id,
        r.machine_id,
        r.machine_name,
        calendar.iso(r.created_at),
        "" if r.paid_at is None else calendar.iso(r.paid_at),
        r.status,
        r.quantity,
        r.dispensed,
        spreadsheet.rupees(r.unit_amount),
        spreadsheet.rupees(r.amount),
        r.currency,
        r.amount,
        spreadsheet.rupees(r.refund_amount),
        r.refund_amount,
        r.refund_status,
        r.refund_reasons,
        r.rating or "",
        r.gateway,
        r.gateway_order_id,
    )


@admin_page
async def order_csv(request: Request) -> Response:
    where, _, errors = filters(request)
    if errors:
        raise InvalidRequest(" ".join(errors.values()))
    views = services(request).order_views
    calendar = services(request).ctx.calendar

    async def rows() -> AsyncIterator[str]:
        yield spreadsheet.BOM + spreadsheet.line(CSV_COLUMNS)
        async for row in views.export(where):
            yield spreadsheet.line(_csv_row(row, calendar))

    stamp = calendar.text(services(request).ctx.clock.now(), "%Y%m%d-%H%M%S")
    name = f"smartvend-orders-{stamp}.csv"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers=headers)

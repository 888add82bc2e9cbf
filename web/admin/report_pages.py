"""Reports: sales of a day, week, month or range of local days, by machine, location or
product, as a chart, a table (cards on a phone) and CSV; fleet uptime below.

A user limited to locations sees only their machines, on the page and in the CSV.
"""

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.clock import LocalCalendar
from api.errors import InvalidRequest
from api.http.deps import services, settings
from api.services import report_mail
from api.views import reports_window
from api.views.orders import refund_reason_text
from api.views.reports import Report, Reports, SaleLine
from api.views.reports_window import Group, Period, Window
from web.admin import charts, spreadsheet
from web.admin.guard import admin_page
from web.admin.templating import SECURITY_HEADERS, day, money, render

STACKED = 6  # rows with their own colour in the chart; the rest are "Others"
CSV_COLUMNS = (
    "finished_at",
    "order_id",
    "machine_id",
    "machine_name",
    "location",
    "slot",
    "product_id",
    "product_name",
    "quantity",
    "dispensed",
    "unit_price",
    "amount",
    "currency",
    "unit_price_paise",
    "amount_paise",
    "order_refunded",
    "order_refunded_paise",
    "refund_reason",
    "rating",
)
PERIOD_WORDS = {Period.DAY: "day", Period.WEEK: "week", Period.MONTH: "month"}


def _percent(value: float) -> str:
    return f"{value:.0f}%"


def _query(request: Request) -> dict[str, str]:
    """The report's query, without empty fields and the dates the period does not use (the
    form keeps every field, so switching between a range and a period just works)."""
    found = {
        k: v.strip()
        for k, v in request.query_params.items()
        if k in reports_window.QUERY_NAMES and v.strip()
    }
    unused = ("date",) if found.get("period") == Period.RANGE.value else ("from", "to")
    return {k: v for k, v in found.items() if k not in unused}


def _bar_labels(report: Report, calendar: LocalCalendar, now: int) -> tuple[list[str], int | None]:
    """Each bar's label and which bar holds now (today, or this hour), if any."""
    w = report.window
    if w.hourly:
        labels = [calendar.text(b, "%H:00") for b in w.buckets]
    else:
        labels = [day(b, calendar) for b in w.buckets]
    current = reports_window.bucket_of(w, now)
    mark = None if current is None else w.buckets.index(current)
    if mark is not None:
        labels[mark] = "now" if w.hourly else "today"
    return labels, mark


def _chart(
    report: Report, labels: list[str], mark: int | None
) -> tuple[Markup, list[tuple[str, str]]]:
    w = report.window
    top = [r for r in report.rows if r.figures.amount > 0][:STACKED]
    series = [(r.name, [float(report.stacked.get((r.key, b), 0)) for b in w.buckets]) for r in top]
    shown = {r.key for r in top}
    others = [
        float(sum(v for (k, bar), v in report.stacked.items() if bar == b and k not in shown))
        for b in w.buckets
    ]
    if any(others):
        series.append(("Others", others))
    title = f"Sales per {'hour' if w.hourly else 'day'} by {report.group.value}, {w.title()}"
    chart = charts.stacked_bars(
        title,
        labels,
        series,
        lambda v: money(v),
        empty="No sales in this period.",
        mark=mark,
    )
    legend = [(name, charts.palette(i)) for i, (name, _) in enumerate(series)]
    return chart, legend


def _links(w: Window, group: Group) -> dict[str, str]:
    """Previous and next period of the same kind, and the CSV of this one."""
    here: dict[str, str] = {"period": w.period.value, "group": group.value}
    if w.period is Period.RANGE:
        span = w.days
        before = {
            "from": (w.first - dt.timedelta(days=span)).isoformat(),
            "to": (w.first - dt.timedelta(days=1)).isoformat(),
        }
        after = {
            "from": (w.last + dt.timedelta(days=1)).isoformat(),
            "to": (w.last + dt.timedelta(days=span)).isoformat(),
        }
        this = {"from": w.first.isoformat(), "to": w.last.isoformat()}
    else:
        before = {"date": w.step(-1).isoformat()}
        after = {"date": w.step(1).isoformat()}
        this = {"date": w.first.isoformat()}
    return {
        "previous": "/admin/reports?" + urlencode({**here, **before}),
        "next": "/admin/reports?" + urlencode({**here, **after}),
        "csv": "/admin/reports.csv?" + urlencode({**here, **this}),
    }


@admin_page
async def reports(request: Request) -> Response:
    ctx = services(request).ctx
    calendar, now = ctx.calendar, ctx.clock.now()
    typed = _query(request)
    error = None
    try:
        window, group = reports_window.from_query(typed, calendar, now)
    except InvalidRequest as exc:
        error = exc.message
        window, group = reports_window.from_query({}, calendar, now)
    scope = request.state.principal.locations
    report = await Reports(ctx).summary(window, group, scope)
    labels, mark = _bar_labels(report, calendar, now)
    chart, legend = _chart(report, labels, mark)
    uptime = await services(request).fleet_stats.uptime(7)
    if scope is not None:
        who = request.state.principal
        seen = {
            m.machine_id
            for m in await services(request).admin_views.fleet()
            if who.sees(m.location)
        }
        uptime.machines = [(m, n) for m, n in uptime.machines if m in seen]
        uptime.values = {k: v for k, v in uptime.values.items() if k[0] in seen}
    today = calendar.local(now).date()
    ranged = window.period is Period.RANGE
    shown = {  # what the date fields show: what was typed, else the period on screen
        "date": "" if ranged else (today if window.first <= today <= window.last else window.first),
        "from": window.first if ranged else "",
        "to": window.last if ranged else "",
    }
    config = settings(request)
    mailed: dict[str, Any] = {
        "period": config.report_email_period,
        "to": config.alert_email,
        "hour": config.report_email_hour,
        "latest": await report_mail.latest(ctx),
    }
    if mailed["latest"] is not None:
        start = calendar.text(mailed["latest"].period_start, "%a %-d %b %Y")
        weekly = mailed["latest"].period == "weekly"
        mailed["latest_label"] = f"the week from {start}" if weekly else start
    return render(
        request,
        "admin/reports.html",
        {
            "mailed": mailed,
            "shown": {k: typed.get(k, str(v)) for k, v in shown.items()},
            "r": report,
            "w": window,
            "typed": typed,
            "error": error,
            "period": window.period.value,
            "group": group.value,
            "periods": [p.value for p in Period],
            "groups": [g.value for g in Group],
            "chart": chart,
            "legend": legend,
            "bars": list(zip(labels, window.buckets, strict=True)),
            "mark": mark,
            "links": _links(window, group),
            "uptime_chart": charts.bars(
                "Fleet uptime per day (mean of machines)",
                [day(d, calendar) for d in uptime.days],
                [uptime.day_mean(d) or 0.0 for d in uptime.days],
                _percent,
                top=100.0,
            ),
            "uptime": uptime,
            "uptime_labels": [day(d, calendar) for d in uptime.days],
            "tz": calendar.name,
            "money": money,
            "percent": _percent,
        },
        400 if error else 200,
    )


def refund_words(line: SaleLine) -> str:
    """Why money went back, in words, with what the operator wrote for a manual refund."""
    words = refund_reason_text(",".join(line.refund_reasons))
    if line.refund_notes:
        words = f"{words}: {'; '.join(line.refund_notes)}"
    return words


def csv_row(line: SaleLine, calendar: LocalCalendar) -> tuple[object, ...]:
    amount = line.dispensed * line.unit_amount
    return (
        calendar.iso(line.finished_at),
        line.order_id,
        line.machine_id,
        line.machine_name,
        line.location or "",
        line.slot,
        line.product_id,
        line.product_name,
        line.quantity,
        line.dispensed,
        spreadsheet.rupees(line.unit_amount),
        spreadsheet.rupees(amount),
        line.currency,
        line.unit_amount,
        amount,
        spreadsheet.rupees(line.order_refunded),
        "" if line.order_refunded is None else line.order_refunded,
        refund_words(line),
        line.rating or "",
    )


@admin_page
async def report_csv(request: Request) -> Response:
    ctx = services(request).ctx
    calendar = ctx.calendar
    window, _ = reports_window.from_query(_query(request), calendar, ctx.clock.now())
    lines = Reports(ctx).lines(window, request.state.principal.locations)

    async def rows() -> AsyncIterator[str]:
        yield spreadsheet.BOM + spreadsheet.line(CSV_COLUMNS)
        async for line in lines:
            yield spreadsheet.line(csv_row(line, calendar))

    name = f"smartvend-sales-{window.first.isoformat()}-to-{window.last.isoformat()}.csv"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers=headers)

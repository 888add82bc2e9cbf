"""Reports: sales per day per machine (net of manual refunds), fleet uptime and shoppers'
ratings, as SVG charts with tables."""

from starlette.requests import Request
from starlette.responses import Response

from api.http.deps import services
from web.admin import charts
from web.admin.guard import admin_page
from web.admin.templating import day, money, render


def _percent(value: float) -> str:
    return f"{value:.0f}%"


@admin_page
async def reports(request: Request) -> Response:
    stats = services(request).fleet_stats
    amounts, units = await stats.sales_per_day(14)
    calendar = services(request).ctx.calendar
    uptime = await stats.uptime(7)
    labels = [day(d, calendar) for d in amounts.days]
    series = [
        (name, [amounts.value(mid, d) or 0.0 for d in amounts.days])
        for mid, name in amounts.machines
    ]
    fleet_uptime = [uptime.day_mean(d) or 0.0 for d in uptime.days]
    ratings = await services(request).feedback_views.per_day(amounts.days)
    since = min(amounts.days) if amounts.days else 0
    products = await services(request).slots.sales(since, since + 14 * 86400)
    return render(
        request,
        "admin/reports.html",
        {
            "sales_chart": charts.stacked_bars(
                "Sales per day per machine",
                labels,
                series,
                lambda v: money(v),
                empty="No sales in the last 14 days yet.",
            ),
            "legend": [(name, charts.palette(i)) for i, (_, name) in enumerate(amounts.machines)],
            "amounts": amounts,
            "units": units,
            "labels": labels,
            "uptime_chart": charts.bars(
                "Fleet uptime per day (mean of machines)",
                [day(d, calendar) for d in uptime.days],
                fleet_uptime,
                _percent,
                top=100.0,
            ),
            "uptime": uptime,
            "uptime_labels": [day(d, calendar) for d in uptime.days],
            "ratings": [(day(d, calendar), ratings[d]) for d in amounts.days],
            "by_product": products["by_product"],
            "by_slot": products["by_slot"],
            "money": money,
            "percent": _percent,
        },
    )

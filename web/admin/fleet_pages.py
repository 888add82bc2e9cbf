"""The fleet at a glance, kept live by Server-Sent Events."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.clock import LocalCalendar
from api.http import streams
from api.http.deps import services
from api.infra.changes_from_commits import FLEET
from api.views.admin import FleetRow
from web.admin import session
from web.admin.guard import admin_page
from web.admin.templating import SECURITY_HEADERS, money, render, when

FILTERS = {"": "All machines", "online": "Online", "offline": "Offline", "low": "Low stock"}
SORTS = {"name": "Name", "stock": "Stock", "sales": "Today's sales", "seen": "Last seen"}
MIN_INTERVAL_S = 1.0  # a busy fleet is read at most this often per open page
STREAM_LIFETIME_S = 300.0  # the browser reconnects by itself; a stream never outlives this


def row_view(row: FleetRow, calendar: LocalCalendar) -> dict[str, Any]:
    """A fleet row as the page shows it; the same dict feeds the live updates."""
    return {
        "id": row.machine_id,
        "name": row.name,
        "location": row.location or "",
        "online": row.online,
        "status": "online" if row.online else "offline",
        "last_seen": when(row.last_seen, calendar),
        "stock": row.stock,
        "capacity": row.capacity,
        "threshold": row.threshold,
        "low": row.low_stock,
        "price": money(row.price_amount, row.currency),
        "mode": row.mode.replace("_", " "),
        "reported_mode": row.reported_mode or "nothing yet",
        "busy": row.busy,
        "fw": row.fw or "-",
        "applied": row.applied,
        "sales": money(row.sales_today, row.currency),
        "units": row.units_today,
        "ratings": _ratings(row),
    }


def _ratings(row: FleetRow) -> str:
    if not row.rated_up_today and not row.rated_down_today:
        return "-"
    return f"{row.rated_up_today} up · {row.rated_down_today} down"


def select_rows(rows: list[FleetRow], show: str, sort: str) -> list[FleetRow]:
    if show == "online":
        rows = [r for r in rows if r.online]
    elif show == "offline":
        rows = [r for r in rows if not r.online]
    elif show == "low":
        rows = [r for r in rows if r.low_stock]
    if sort == "stock":
        return sorted(rows, key=lambda r: (r.stock / r.capacity, r.name))
    if sort == "sales":
        return sorted(rows, key=lambda r: (-r.sales_today, r.name))
    if sort == "seen":
        return sorted(rows, key=lambda r: (-(r.last_seen or 0), r.name))
    return rows


def _choice(request: Request) -> tuple[str, str]:
    show = request.query_params.get("show", "")
    sort = request.query_params.get("sort", "name")
    return (show if show in FILTERS else ""), (sort if sort in SORTS else "name")


async def _rows(request: Request, show: str, sort: str) -> list[dict[str, Any]]:
    who = request.state.principal
    rows = [r for r in await services(request).admin_views.fleet() if who.sees(r.location)]
    calendar = services(request).ctx.calendar
    return [row_view(r, calendar) for r in select_rows(rows, show, sort)]


@admin_page
async def fleet(request: Request) -> Response:
    show, sort = _choice(request)
    rows = await _rows(request, show, sort)
    return render(
        request,
        "admin/fleet.html",
        {
            "rows": rows,
            "show": show,
            "sort": sort,
            "filters": FILTERS,
            "sorts": SORTS,
            "events_url": str(
                request.url_for("admin_events").include_query_params(show=show, sort=sort)
            ),
        },
    )


@admin_page
async def events(request: Request) -> Response:
    """The fleet's rows each time something in the fleet committed (at most once a second)."""
    show, sort = _choice(request)
    loop = asyncio.get_running_loop()
    with streams.opened(request, FLEET) as (feed, held):
        release = held.pop_all().close

    async def stream() -> AsyncIterator[str]:
        started = loop.time()
        sent_at = -MIN_INTERVAL_S
        previous = ""
        yield "retry: 2000\n\n"
        changed: bool | None = True
        while loop.time() - started < STREAM_LIFETIME_S:
            if changed:
                # Still logged in? Asked before each read, so an idle stream costs no
                # query; after a logout it ends at the next change (or its lifetime).
                if await session.admin_of(request) is None:
                    return
                # Coalesce a burst of commits into one read of the fleet.
                await asyncio.sleep(max(0.0, sent_at + MIN_INTERVAL_S - loop.time()))
                data = json.dumps(await _rows(request, show, sort), separators=(",", ":"))
                sent_at = loop.time()
                if data != previous:
                    previous = data
                    yield f"event: fleet\ndata: {data}\n\n"
            else:
                yield ": keepalive\n\n"
            changed = await anext(feed, None)
            if changed is None:
                return  # shutting down

    return streams.LiveStream(stream(), on_close=release, headers=SECURITY_HEADERS)

"""The audit trail: who changed what and when, filtered by dates, machine, user and
action, and a CSV (UTF-8 with a BOM, local ISO times) of what the filters select."""

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.errors import InvalidRequest
from api.http.deps import services
from api.services.audit import ACTIONS, AuditFilter
from api.services.rights import Principal
from schema.models import AuditEntry
from web.admin import spreadsheet
from web.admin.forms import FieldErrors
from web.admin.guard import admin_page
from web.admin.order_pages import _date
from web.admin.templating import SECURITY_HEADERS, money, render

CSV_COLUMNS = ("id", "at", "actor", "action", "target", "before", "after", "reason")
FIELDS = ("from", "to", "machine", "actor", "action")


def filters(request: Request) -> tuple[AuditFilter, dict[str, str], dict[str, str]]:
    q = {k: request.query_params.get(k, "")[:64].strip() for k in FIELDS}
    calendar = services(request).ctx.calendar
    errors = FieldErrors()
    start = errors.read("from", lambda: _date(calendar, q["from"], "From"))
    end = errors.read("to", lambda: _date(calendar, q["to"], "To"))
    action = q["action"] or None
    if action is not None and action not in ACTIONS:
        errors.add("action", "Choose an action from the list.")
        action = None
    where = AuditFilter(
        since=start,
        until=None if end is None else calendar.next_day(end),
        machine_id=q["machine"] or None,
        actor=q["actor"] or None,
        action=action,
    )
    return where, q, errors.messages


async def _visible(request: Request, entries: list[AuditEntry]) -> list[AuditEntry]:
    """A user limited to locations sees their machines' entries only."""
    who: Principal = request.state.principal
    if who.locations is None:
        return entries
    rows = await services(request).admin_views.fleet()
    mine = {r.machine_id for r in rows if who.sees(r.location)}
    return [e for e in entries if e.machine_id in mine]


def _change(value: dict[str, Any] | None) -> str:
    if not value:
        return ""
    return ", ".join(_one(k, v) for k, v in value.items())


def _one(name: str, value: Any) -> str:
    if name in ("price_amount", "price") and isinstance(value, int):
        return f"price {money(value)}"
    if value is None:
        value = "none"
    elif isinstance(value, bool):
        value = "yes" if value else "no"
    elif isinstance(value, list):
        value = ", ".join(str(v) for v in value) or "none"
    return f"{name.replace('_', ' ')}: {value}"


@admin_page
async def audit_page(request: Request) -> Response:
    where, q, errors = filters(request)
    entries = await _visible(request, await services(request).audit.entries(where))
    query = urlencode({k: v for k, v in q.items() if v})
    return render(
        request,
        "admin/audit.html",
        {
            "entries": entries,
            "q": q,
            "errors": errors,
            "actions": ACTIONS,
            "filter_query": query,
            "change": _change,
        },
        400 if errors else 200,
    )


@admin_page
async def audit_csv(request: Request) -> Response:
    where, _, errors = filters(request)
    if errors:
        raise InvalidRequest(" ".join(errors.values()))
    entries = await _visible(request, await services(request).audit.entries(where, limit=100_000))
    calendar = services(request).ctx.calendar

    async def rows() -> AsyncIterator[str]:
        yield spreadsheet.BOM + spreadsheet.line(CSV_COLUMNS)
        for e in entries:
            yield spreadsheet.line(
                (
                    e.id,
                    calendar.iso(e.at),
                    e.actor,
                    e.action,
                    e.target,
                    "" if e.before is None else json.dumps(e.before, ensure_ascii=False),
                    "" if e.after is None else json.dumps(e.after, ensure_ascii=False),
                    e.reason or "",
                )
            )

    stamp = calendar.text(services(request).ctx.clock.now(), "%Y%m%d-%H%M%S")
    name = f"smartvend-audit-{stamp}.csv"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers=headers)

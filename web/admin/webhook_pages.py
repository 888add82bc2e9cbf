"""Outgoing webhooks on the dashboard: add one (its secret shown once), delete one, send
a test event, and read a webhook's delivery log. Admins only (``Right.USERS``)."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.errors import InvalidRequest
from api.http.deps import services
from api.services.rights import Right
from api.services.webhooks_out import EVENTS
from schema.models import OutgoingWebhook
from web.admin.guard import admin_page, field
from web.admin.templating import render


async def _page(
    request: Request,
    *,
    created: OutgoingWebhook | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, object] | None = None,
    status: int = 200,
) -> Response:
    hooks = services(request).outgoing_webhooks
    active = await hooks.active()
    shown = request.query_params.get("log", "")[:40]
    log = await hooks.deliveries(shown) if any(h.id == shown for h in active) else []
    return render(
        request,
        "admin/webhooks.html",
        {
            "hooks": active,
            "events": EVENTS,
            "created": created,
            "errors": errors or {},
            "values": values or {},
            "log_of": shown if log or any(h.id == shown for h in active) else "",
            "log": log,
            "done": request.query_params.get("done", ""),
        },
        status,
    )


@admin_page(right=Right.USERS)
async def webhooks(request: Request) -> Response:
    return await _page(request)


@admin_page(right=Right.USERS)
async def create(request: Request) -> Response:
    url = field(request, "url", 500)
    events = [str(e) for e in request.state.form.getlist("events")]
    try:
        hook = await services(request).outgoing_webhooks.create(url, events, by=request.state.admin)
    except InvalidRequest as exc:
        name = "url" if exc.message.startswith("url") else "events"
        values: dict[str, object] = {"url": url, "events": events}
        return await _page(request, errors={name: exc.message}, values=values, status=400)
    return await _page(request, created=hook)


@admin_page(right=Right.USERS)
async def send_test(request: Request) -> Response:
    hook_id = str(request.path_params["hook_id"])
    await services(request).outgoing_webhooks.send_test(hook_id, by=request.state.admin)
    return RedirectResponse(f"/admin/webhooks?log={hook_id}&done=test", status_code=303)


@admin_page(right=Right.USERS)
async def delete(request: Request) -> Response:
    hook_id = str(request.path_params["hook_id"])
    await services(request).outgoing_webhooks.remove(hook_id, by=request.state.admin)
    return RedirectResponse("/admin/webhooks?done=deleted", status_code=303)

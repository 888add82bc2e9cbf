"""Alerts: what was raised, whether it was mailed, and a button to check now."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.http.deps import runtime, services, settings
from api.services.alert_sender import AlertSender
from api.services.rights import Right
from web.admin.guard import admin_page
from web.admin.templating import render


def sender(request: Request) -> AlertSender:
    """The app's alert sender, built once by the composition root."""
    return runtime(request).alert_sender


@admin_page
async def alerts(request: Request) -> Response:
    rows = await services(request).alerts.recent(200)
    q = request.query_params
    ran = None
    if q.get("raised", "").isdigit() and q.get("sent", "").isdigit():
        ran = {
            "raised": int(q["raised"]),
            "sent": int(q["sent"]),
            "failed": int(q.get("failed", "0")) if q.get("failed", "").isdigit() else 0,
        }
    active = sender(request)
    return render(
        request,
        "admin/alerts.html",
        {
            "rows": rows,
            "ran": ran,
            "mailing": active.enabled,
            "alert_email": settings(request).alert_email,
            "offline_minutes": settings(request).offline_alert_minutes,
        },
    )


@admin_page(right=Right.STOCK)
async def run_checks(request: Request) -> Response:
    result = await sender(request).run_once()
    return RedirectResponse(
        f"/admin/alerts?raised={result.raised}&sent={result.sent}&failed={result.failed}",
        status_code=303,
    )

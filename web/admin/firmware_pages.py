"""Firmware on the dashboard: releases (list, upload), rollouts (start, live progress, resume,
abort) and machine tags. The pages call the same services as the admin API."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.errors import InvalidRequest, SmartVendError
from api.http.deps import services, settings
from api.http.firmware import release_form
from api.services.rights import Right
from web.admin import session
from web.admin.guard import admin_page, error_page, field, unauthenticated
from web.admin.templating import message_page, render

NOTICES = {"uploaded": "Release stored.", "tagged": "Tags saved."}


@admin_page(right=Right.MACHINES)
async def firmware(request: Request) -> Response:
    svc = services(request)
    return render(
        request,
        "admin/firmware.html",
        {
            "releases": await svc.firmware.list(),
            "rollouts": await svc.rollouts.list(),
            "notice": NOTICES.get(request.query_params.get("done", ""), ""),
            "keys": settings(request).firmware_keys,
            "max_mib": round(settings(request).firmware_max_bytes / 1048576, 1),
        },
    )


async def upload(request: Request) -> Response:
    """A release upload: multipart, so the form is read here (files allowed), CSRF checked."""
    who = await session.user_of(request)
    if who is None:
        return unauthenticated(request)
    username = request.state.admin = who.username
    request.state.principal = who
    if not who.can(Right.MACHINES):
        return message_page(request, 403, "Not allowed", "Your role may not add firmware.")
    try:
        manifest_bytes, signature, uploads, forms = await release_form(request)
        try:
            if not session.csrf_ok(request, forms[0]):
                return message_page(request, 403, "Form expired", "Reload the page and retry.")
            await services(request).firmware.add(
                manifest_bytes, signature, uploads, settings(request).firmware_keys, actor=username
            )
        finally:
            for form in forms:
                await form.close()
    except SmartVendError as exc:
        return error_page(request, exc)
    return RedirectResponse("/admin/firmware?done=uploaded", status_code=303)


def _target(request: Request) -> object:
    kind = field(request, "target_kind", 16)
    if kind == "machines":
        ids = [m.strip() for m in field(request, "machines", 4000).split(",") if m.strip()]
        return {"machines": ids}
    if kind == "tag":
        return {"tag": field(request, "tag", 64)}
    return "all"


def _numbers(text: str, name: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as exc:
        raise InvalidRequest(f"{name}: whole numbers separated by commas") from exc


@admin_page(right=Right.MACHINES)
async def start(request: Request) -> Response:
    try:
        pct = float(field(request, "max_failure_pct", 8) or "10")
        hours = float(field(request, "deadline_h", 8) or "24")
    except ValueError as exc:
        raise InvalidRequest("failure threshold and deadline are numbers") from exc
    rollout_id = await services(request).rollouts.start(
        field(request, "version", 32),
        _target(request),
        _numbers(field(request, "waves", 100), "waves"),
        pct,
        max(1, int(hours * 3600)),
        actor=request.state.admin,
    )
    return RedirectResponse(f"/admin/rollouts?id={rollout_id}", status_code=303)


@admin_page(right=Right.READ)
async def rollout(request: Request) -> Response:
    """``/admin/rollouts?id=…``: one rollout's machines; without an id, the firmware page."""
    rid = request.query_params.get("id")
    if not rid:
        return await firmware(request)
    view = await services(request).rollouts.view(rid)
    counts: dict[str, int] = {}
    for m in view["machines"]:
        counts[m["status"]] = counts.get(m["status"], 0) + 1
    return render(request, "admin/rollout.html", {"r": view, "counts": counts})


@admin_page(right=Right.MACHINES)
async def resume(request: Request) -> Response:
    rid = str(request.path_params["rid"])
    await services(request).rollouts.resume(rid)
    return RedirectResponse(f"/admin/rollouts?id={rid}", status_code=303)


@admin_page(right=Right.MACHINES)
async def abort(request: Request) -> Response:
    rid = str(request.path_params["rid"])
    await services(request).rollouts.abort(rid)
    return RedirectResponse(f"/admin/rollouts?id={rid}", status_code=303)


@admin_page(right=Right.MACHINES)
async def tags(request: Request) -> Response:
    mid = field(request, "machine_id", 32)
    wanted = [t.strip() for t in field(request, "tags", 2000).split(",") if t.strip()]
    await services(request).rollouts.set_tags(mid, wanted)
    return RedirectResponse("/admin/firmware?done=tagged", status_code=303)

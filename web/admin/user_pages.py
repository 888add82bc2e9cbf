"""Users of the dashboard and the API: list, create, change role or locations, reset a
password, disable or enable. Admins only (``Right.USERS``); every change is audited."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.errors import InvalidRequest, SmartVendError
from api.http.deps import services
from api.services.admins import MIN_PASSWORD, UserChange
from api.services.rights import ROLES, Right
from web.admin.guard import admin_page, field
from web.admin.templating import render

DONE = {
    "created": "User created.",
    "changed": "User changed.",
    "password": "Password reset: their sessions and tokens have ended.",
    "disabled": "User disabled: their sessions and tokens have ended.",
    "enabled": "User enabled.",
}


def _locations(text: str) -> list[str] | None:
    """Comma-separated locations; empty means every location."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return parts or None


async def _page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    users = await services(request).admins.users()
    done = DONE.get(request.query_params.get("done", ""), "")
    return render(
        request,
        "admin/users.html",
        {
            "users": users,
            "roles": ROLES,
            "done": done,
            "errors": errors or {},
            "values": values or {},
            "min_password": MIN_PASSWORD,
        },
        status,
    )


@admin_page(right=Right.USERS)
async def users(request: Request) -> Response:
    return await _page(request)


@admin_page(right=Right.USERS)
async def create(request: Request) -> Response:
    values = {k: field(request, k, 200) for k in ("username", "role", "locations")}
    errors: dict[str, str] = {}
    password = field(request, "password", 256)
    if values["role"] not in ROLES:
        errors["role"] = "Choose a role."
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"At least {MIN_PASSWORD} characters."
    if not errors:
        try:
            await services(request).admins.create(
                values["username"],
                password,
                values["role"],
                _locations(values["locations"]),
                by=request.state.admin,
            )
        except InvalidRequest as exc:
            errors["username"] = exc.message
        except SmartVendError as exc:  # taken
            errors["username"] = exc.message
    if errors:
        return await _page(request, errors=errors, values=values, status=400)
    return RedirectResponse("/admin/users?done=created", status_code=303)


@admin_page(right=Right.USERS)
async def change(request: Request) -> Response:
    username = str(request.path_params["username"])
    what = field(request, "what", 20)
    if what == "role":
        role = field(request, "role", 16)
        scope = _locations(field(request, "locations", 2000))
        change_to = UserChange(role=role, locations=scope, locations_set=True)
        done = "changed"
    elif what == "password":
        password = field(request, "password", 256)
        if len(password) < MIN_PASSWORD:
            return await _page(
                request,
                errors={f"password-{username}": f"At least {MIN_PASSWORD} characters."},
                status=400,
            )
        change_to = UserChange(password=password)
        done = "password"
    elif what in ("disable", "enable"):
        change_to = UserChange(disabled=what == "disable")
        done = "disabled" if what == "disable" else "enabled"
    else:
        raise InvalidRequest("Choose what to change.")
    try:
        await services(request).admins.change(username, change_to, by=request.state.admin)
    except InvalidRequest as exc:
        return await _page(request, errors={f"user-{username}": exc.message}, status=400)
    except SmartVendError as exc:
        if exc.code != "last_admin":
            raise
        return await _page(request, errors={f"user-{username}": exc.message}, status=409)
    return RedirectResponse(f"/admin/users?done={done}", status_code=303)

"""Shopper and admin pages (Jinja2), mounted beside the API."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from web import shop
from web.admin import routes as admin_routes
from web.templating import STATIC, static_url


async def favicon(_request: Request) -> Response:
    """Browsers ask for /favicon.ico on their own (for JSON answers, bookmarks): the icon."""
    return RedirectResponse(
        static_url("favicon.svg"), status_code=301, headers={"Cache-Control": "max-age=86400"}
    )


def routes() -> list[BaseRoute]:
    return [
        *shop.routes(),
        *admin_routes.routes(),
        Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]

"""Shopper and admin pages (Jinja2), mounted beside the API."""

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from web import shop
from web.admin import routes as admin_routes
from web.templating import STATIC


def routes() -> list[BaseRoute]:
    return [
        *shop.routes(),
        *admin_routes.routes(),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]

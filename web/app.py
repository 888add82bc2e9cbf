"""The full SmartVend server: the API plus the shopper and admin pages."""

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from api.app import create_app as create_api
from api.settings import Settings
from web import pages
from web.missing import page_or_api_error


def create_app(settings: Settings, **kwargs: Any) -> Starlette:
    app = create_api(settings, routes=pages.routes(), **kwargs)
    app.add_exception_handler(HTTPException, page_or_api_error)
    return app

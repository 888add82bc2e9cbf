"""The full SmartVend server: the API plus the shopper and admin pages."""

from typing import Any

from starlette.applications import Starlette

from api.app import create_app as create_api
from api.settings import Settings
from web import pages


def create_app(settings: Settings, **kwargs: Any) -> Starlette:
    return create_api(settings, routes=pages.routes(), **kwargs)

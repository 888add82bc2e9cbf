"""The full SmartVend server: the API plus the shopper and admin pages."""

import os

from starlette.applications import Starlette

from api.app import create_app as create_api
from api.settings import Settings
from web import pages


def create_app(settings: Settings, **kwargs: object) -> Starlette:
    return create_api(settings, routes=pages.routes(), **kwargs)  # type: ignore[arg-type]


def from_env() -> Starlette:
    """uvicorn's factory: settings from the environment, read once here."""
    return create_app(Settings.from_env(os.environ))

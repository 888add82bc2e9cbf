"""The OpenAPI 3.1 description of SmartVend's HTTP API, served at /openapi.json.

Nothing is written here per route: every operation comes from the route's own
declaration (``api.http.route_table.route``) in the route lists below, the same
lists the app serves.
"""

from typing import Any

from starlette.routing import BaseRoute

from api.http import admin, catalogue, device, firmware, operators, shopper
from api.http.route_table import ApiRoute


def api_routes() -> list[BaseRoute]:
    """Every route of the JSON API, in the order the app tries them."""
    return [
        *shopper.routes,
        *device.routes,
        *admin.routes,
        *firmware.routes,
        *catalogue.routes,
        *operators.routes,
    ]


def openapi_document(routes: list[BaseRoute] | None = None) -> dict[str, Any]:
    """The document of ``routes`` (the API's own by default); routes declared without
    an operation (pages, health, metrics) are not in it."""
    paths: dict[str, dict[str, Any]] = {}
    for r in api_routes() if routes is None else routes:
        if isinstance(r, ApiRoute):
            paths.setdefault(r.document_path, {})[r.method] = r.operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SmartVend API",
            "version": "1.0.0",
            "description": "Shoppers lock a machine by its display code, pay online and "
            "the machine dispenses. Errors are "
            '{"error": {"code", "message"}} with a real status.',
        },
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }

"""Unknown addresses: a page with a way back for people, the API's JSON error for programs."""

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.http.errors import http_error
from web.templating import not_found

API_ROOTS = ("/api/", "/create-order", "/verify-payment", "/low-stock-alert", "/openapi.json")


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not a script calling the API)."""
    path = request.url.path
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "text/html" in accept and not path.startswith(API_ROOTS)


async def page_or_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and wants_page(request):
        if request.url.path.startswith("/admin"):
            return not_found(
                request,
                "Page not found",
                "There is no such page in the dashboard.",
                back=("/admin", "Back to the fleet"),
            )
        return not_found(
            request,
            "Page not found",
            "There is no page at this address. Find your machine in the list, "
            "or scan the QR code on it.",
        )
    return await http_error(request, exc)

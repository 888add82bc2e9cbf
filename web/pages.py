"""Shopper and admin pages (Jinja2), mounted beside the API."""

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


async def home(request: Request) -> Response:
    return templates.TemplateResponse(request, "home.html", {})


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

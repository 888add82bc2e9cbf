"""One declaration per route: the Starlette route, its request spec and its OpenAPI operation.

A route module lists its routes with :func:`route`::

    routes = [
        route(
            "POST", "/api/machine/{mid}/unlock", unlock,
            summary="Release your lock",
            ok=obj({"unlocked": BOOL}),
            params=[MID],
            body=specs.UNLOCK,
            errors=(403, 409),
        ),
    ]

and that one declaration is everything: Starlette routes the request to the
endpoint, the endpoint reads its body with ``await specs.read(request)`` (the
declared spec), and ``api.http.openapi`` describes the operation from the same
fields: the body's schema from the spec, 400 and 413 for any body, 400 for a
machine id off its pattern, 401 and the bearer scheme for ``auth``, and every
other status in ``errors``.
"""

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypedDict

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.http import specs
from api.http.shapes import ERROR, JSON, MID

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
Endpoint = Callable[[Request], Awaitable[Response]]


class Preset(TypedDict, total=False):
    """Declaration fields a module's routes share, passed as ``**ADMIN``."""

    auth: bool
    tag: str


ADMIN: Preset = {"auth": True, "tag": "admin"}  # an operator's bearer token
DEVICE: Preset = {"auth": True, "tag": "device"}  # a machine's API key
FIRMWARE: Preset = {"auth": True, "tag": "firmware"}  # releases and rollouts


def error_answers(*codes: int) -> dict[str, Any]:
    """Error answers, each ``{"error": {"code", "message"}}``."""
    return {
        str(code): {"description": "error", "content": {JSON: {"schema": ERROR}}} for code in codes
    }


class ApiRoute(Route):
    """A Starlette route that carries its request spec and its OpenAPI operation."""

    def __init__(
        self,
        method: str,
        path: str,
        endpoint: Endpoint,
        *,
        spec: specs.Spec | None,
        operation: dict[str, Any],
    ) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method.lower()
        self.spec = spec
        self.operation = operation

    @property
    def document_path(self) -> str:
        """The path as OpenAPI writes it: ``{path:path}`` is ``{path}``."""
        return re.sub(r"\{(\w+):\w+\}", r"{\1}", self.path)


def route(
    method: str,
    path: str,
    endpoint: Endpoint,
    *,
    summary: str,
    ok: dict[str, Any] | None = None,
    body: specs.Spec | None = None,
    raw_body: tuple[str, dict[str, Any]] | None = None,
    errors: Sequence[int] = (),
    params: Sequence[dict[str, Any]] = (),
    auth: bool = False,
    status: int = 200,
    tag: str = "shopper",
    media: str = JSON,
    success: dict[str, Any] | None = None,
) -> ApiRoute:
    """Declare a route.

    ``body`` is the JSON body's spec (``api.http.specs``); ``raw_body`` a body the
    specs cannot state, as ``(media type, schema)``, checked by the endpoint or its
    service. ``ok`` is the schema of the ``status`` answer in ``media`` (or
    ``success``, the whole success answers when there are several). ``errors`` are
    the other statuses the route answers; ``auth`` means a bearer token (401).
    """
    answers = tuple(errors)
    if MID in params and 400 not in answers:
        answers = (400, *answers)  # a machine id off its pattern is refused before anything
    if body is not None or raw_body is not None:
        answers = (400, 413, *answers)
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            **(
                success
                or {
                    str(status): {
                        "description": "success",
                        "content": {media: {"schema": ok or {"type": "object"}}},
                    }
                }
            ),
            **error_answers(*answers),
        },
    }
    if params:
        op["parameters"] = list(params)
    if body is not None:
        raw_body = (JSON, specs.schema(body))
    if raw_body is not None:
        kind, schema = raw_body
        op["requestBody"] = {"required": True, "content": {kind: {"schema": schema}}}
    if auth:
        op["security"] = BEARER
        op["responses"].update(error_answers(401))
    return ApiRoute(method, path, endpoint, spec=body, operation=op)

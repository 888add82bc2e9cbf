"""Reading request bodies: size-limited JSON objects and typed fields."""

import json
from typing import Any

from starlette.requests import Request

from api.errors import InvalidRequest, PayloadTooLarge
from api.http.deps import runtime_if_running

DEFAULT_LIMIT = 16384


def _limit(request: Request, limit: int | None) -> int:
    """The route's own limit, never above MAX_BODY_BYTES."""
    root = runtime_if_running(request)
    most = root.settings.max_body_bytes if root is not None else DEFAULT_LIMIT
    return most if limit is None else min(limit, most)


async def read_body(request: Request, limit: int | None = None) -> bytes:
    limit = _limit(request, limit)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("bad Content-Length")
        if int(declared) > limit:
            raise PayloadTooLarge(f"request body over {limit} bytes")
    return await read_capped(request, limit, f"request body over {limit} bytes")


async def read_capped(request: Request, limit: int, too_large: str) -> bytes:
    """The body as it streams in, refused (413 ``too_large``) once past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request, limit: int | None = None) -> dict[str, Any]:
    raw = await read_body(request, limit)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidRequest("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    return data


def text(
    body: dict[str, Any], name: str, *, max_len: int = 128, required: bool = True, min_len: int = 1
) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    if not min_len <= len(value) <= max_len:
        raise InvalidRequest(f"{name} must be {min_len} to {max_len} characters")
    return value


def integer(
    body: dict[str, Any], name: str, *, low: int, high: int, default: int | None = None
) -> int:
    value = body.get(name, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one kind of number: 3.0 is the integer 3
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer")
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be {low} to {high}")
    return value


def query_text(request: Request, name: str, *, max_len: int = 128) -> str:
    value = request.query_params.get(name, "")
    if len(value) > max_len:
        raise InvalidRequest(f"{name} must be at most {max_len} characters")
    return value


def only_params(request: Request, allowed: frozenset[str]) -> None:
    """Refuse a query parameter the route does not take: a misspelt filter would
    otherwise be ignored and show everything."""
    unknown = set(request.query_params) - allowed
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter; this route takes {', '.join(sorted(allowed))}"
        )

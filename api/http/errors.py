"""One table from SmartVend's errors to HTTP answers."""

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import errors as e

log = logging.getLogger(__name__)

STATUS: dict[type[e.SmartVendError], int] = {
    e.PayloadTooLarge: 413,
    e.InvalidRequest: 400,
    e.InvalidCode: 400,
    e.InvalidSignature: 400,
    e.InvalidCredentials: 401,
    e.Unauthorized: 401,
    e.PaymentRequired: 402,
    e.NotLockOwner: 403,
    e.NotOrderOwner: 403,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.SessionExpired: 410,
    e.RateLimited: 429,
    e.GatewayError: 502,
    e.MachineOffline: 503,
    e.StreamsFull: 503,
}


def status_of(exc: e.SmartVendError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    slot: str | None = None,
) -> JSONResponse:
    error: dict[str, str] = {"code": code, "message": message}
    if slot is not None:  # a slot's answer names it (insufficient_stock, slot_unavailable)
        error["slot"] = slot
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def smartvend_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.SmartVendError)
    status = status_of(exc)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    if status >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    return error_response(status, exc.code, exc.message, headers, slot=getattr(exc, "slot", None))


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    400: "invalid_request",
    413: "payload_too_large",
    401: "unauthorized",
    403: "forbidden",
}


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Errors outside ``api.http.request_id.RequestId`` (which logs and answers the rest)."""
    request_id = request.scope.get("state", {}).get("request_id")
    log.exception("unexpected error (request %s)", request_id, exc_info=exc)
    headers = {"X-Request-Id": request_id} if request_id else None
    return error_response(500, "internal_error", "something went wrong on our side", headers)

"""Every HTTP answer carries ``X-Request-Id``; every 500 is logged with its traceback and id.

An ASGI middleware, outermost of the app's own: it names the request (a caller's
``X-Request-Id`` is kept when it is short and plain, so a proxy's id follows the
request through), puts the id in ``scope["state"]["request_id"]`` and in
``current_request_id()`` for log lines, and adds the header to the answer. An
exception nothing else handled is logged here, once, with method, route path,
source address and id, and answered as the contract's JSON 500 with the id, so
an operator can find the traceback from what a shopper or a proxy saw.
"""

import contextvars
import logging
import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.errors import error_response

log = logging.getLogger(__name__)

HEADER = "x-request-id"
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "smartvend_request_id", default=None
)


def current_request_id() -> str | None:
    """The id of the HTTP request this code runs for, if any."""
    return _CURRENT.get()


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER.encode():
            text = value.decode("latin-1")
            return text if _ACCEPTED.fullmatch(text) else None
    return None


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        token = _CURRENT.set(request_id)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER.encode()
                ]
                message = {**message, "headers": [*headers, (HEADER.encode(), request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            client = scope.get("client")
            log.exception(
                "500 on %s %s (request %s, from %s)",
                scope.get("method"),
                scope.get("path"),
                request_id,
                client[0] if client else None,
                extra={"request_id": request_id, "status": 500},
            )
            if started:  # the answer was already under way: nothing more can be said
                return
            response = error_response(
                500,
                "internal_error",
                f"something went wrong on our side (request {request_id})",
                headers={"X-Request-Id": request_id},
            )
            await response(scope, receive, send)
        finally:
            _CURRENT.reset(token)

"""Every request body is limited to ``MAX_BODY_BYTES`` before anything reads it.

A declared ``Content-Length`` over the limit is answered 413 at once, before
routing, form parsing or CSRF checks; a body that streams past the limit stops
the read with ``PayloadTooLarge`` (413, the JSON error shape).
"""

import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge
from api.http.errors import error_response


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: Sequence[tuple["re.Pattern[str]", int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # (path pattern, limit) of the few routes that take more (product images).
        self.larger = tuple(larger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for pattern, most in self.larger:
            if pattern.fullmatch(scope.get("path", "")):
                limit = max(limit, most)
        message = f"request body over {limit} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    response = error_response(400, "invalid_request", "bad Content-Length")
                    await response(scope, receive, send)
                    return
                if int(value) > limit:
                    response = error_response(413, PayloadTooLarge.code, message)
                    response.headers["Connection"] = "close"
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(message)
            return msg

        await self.app(scope, limited, send)

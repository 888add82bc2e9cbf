"""Who is calling: admin bearer tokens and machine API keys.

A token names its admin and the admin's token version; logging out increases
the version, so every token issued before stops working at once.
"""

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request

from api.errors import Unauthorized

TOKEN_TTL_S = 3600


class AdminTokens:
    """Signed, expiring admin tokens (itsdangerous), for scripts and the dashboard."""

    def __init__(self, secret: str, ttl_s: int = TOKEN_TTL_S) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="smartvend-admin-token")
        self.ttl_s = ttl_s

    def issue(self, username: str, version: int = 0) -> str:
        return self._signer.dumps({"u": username, "v": version})

    def claims(self, token: str) -> tuple[str, int]:
        """The username and token version of a well-signed, unexpired token."""
        try:
            data = self._signer.loads(token, max_age=self.ttl_s)
        except SignatureExpired as exc:
            raise Unauthorized("the token has expired; log in again") from exc
        except BadSignature as exc:
            raise Unauthorized("invalid token") from exc
        if not isinstance(data, dict) or not isinstance(data.get("u"), str):
            raise Unauthorized("invalid token")
        version = data.get("v", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise Unauthorized("invalid token")
        return str(data["u"]), version


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    return value.strip()

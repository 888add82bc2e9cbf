"""Secrets derived from SECRET_KEY, one per purpose, so no two uses share a key."""

import hashlib
import hmac

from api.settings import Settings


def derive_secret(settings: Settings, purpose: str) -> str:
    """A stable secret for one purpose, derived from SECRET_KEY."""
    key = str(settings.secret_key).encode()
    return hmac.new(key, purpose.encode(), hashlib.sha256).hexdigest()

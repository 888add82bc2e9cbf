"""Identifiers and secrets SmartVend hands out."""

import random
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
# A cryptographic source; tests may swap in a seeded ``random.Random`` to
# replay a run exactly.
rng: random.Random = secrets.SystemRandom()


def new_id(prefix: str, length: int = 20) -> str:
    """``prefix_`` and random letters/digits; safe in MQTT topics and URLs."""
    return prefix + "_" + "".join(rng.choice(_ALPHABET) for _ in range(length))


def new_display_code() -> str:
    """Six random digits, leading zeros allowed."""
    return f"{rng.randrange(1_000_000):06d}"


def new_api_key() -> str:
    return "svk_" + secrets.token_urlsafe(32)

"""Secrets stored in Mosquitto's password-file hash format.

A stored secret looks like ``$7$<iterations>$<base64 salt>$<base64 hash>``: PBKDF2 with
HMAC-SHA512, a 12-byte salt and a 64-byte derived key, exactly what Mosquitto 2.0's
``mosquitto_passwd`` writes. The same string therefore serves the database, the
embedded broker and a Mosquitto password file generated from the database.

The secrets hashed here are machine API keys and service-account keys: long random
strings, not human passwords. Guessing one is infeasible whatever the work factor, so
the default iteration count is Mosquitto's own default (101), which keeps a CONNECT
storm from a whole fleet cheap. Human passwords (admin logins) do not belong here.
"""

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "$7$"
SALT_BYTES = 12
HASH_BYTES = 64
DEFAULT_ITERATIONS = 101
MAX_ITERATIONS = 10_000_000


def _derive(secret: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, iterations, HASH_BYTES)


def hash_secret(secret: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """Hash ``secret`` with a fresh random salt, in Mosquitto's ``$7$`` format."""
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be between 1 and {MAX_ITERATIONS}")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(secret, salt, iterations)
    salt_b64 = base64.b64encode(salt).decode("ascii")
    digest_b64 = base64.b64encode(digest).decode("ascii")
    return f"{PREFIX}{iterations}${salt_b64}${digest_b64}"


def _split(stored: str) -> tuple[int, bytes, bytes] | None:
    if not stored.startswith(PREFIX):
        return None
    parts = stored[len(PREFIX) :].split("$")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    iterations = int(parts[0])
    if not 1 <= iterations <= MAX_ITERATIONS:
        return None
    try:
        salt = base64.b64decode(parts[1], validate=True)
        digest = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError):
        return None
    if not salt or len(digest) != HASH_BYTES:
        return None
    return iterations, salt, digest


def is_hash(stored: str) -> bool:
    """True when ``stored`` is a well-formed ``$7$`` hash."""
    return isinstance(stored, str) and _split(stored) is not None


def verify_secret(secret: str, stored: str) -> bool:
    """True when ``secret`` matches ``stored``; False for a malformed ``stored`` (never raises)."""
    if not isinstance(secret, str) or not isinstance(stored, str):
        return False
    parts = _split(stored)
    if parts is None:
        return False
    iterations, salt, digest = parts
    try:
        candidate = _derive(secret, salt, iterations)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(candidate, digest)

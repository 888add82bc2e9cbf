"""Admin accounts: passwords kept only as argon2 hashes."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.errors import Conflict, InvalidCredentials, InvalidRequest
from api.services.context import Context
from schema.models import AdminUser

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash to verify against for unknown users, so they take as long as known ones."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("smartvend-no-such-user")
    return _dummy_hash


MIN_PASSWORD = 10


def valid_username(username: str) -> bool:
    return 1 <= len(username) <= 64 and all(c.isalnum() or c in "._-@" for c in username)


class Admins:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def create(self, username: str, password: str) -> AdminUser:
        if not valid_username(username):
            raise InvalidRequest("username: 1-64 letters, digits or ._-@")
        if len(password) < MIN_PASSWORD:
            raise InvalidRequest(f"password must be at least {MIN_PASSWORD} characters")
        user = AdminUser(
            username=username,
            password_hash=_hasher.hash(password),
            disabled=False,
            created_at=self.ctx.clock.now(),
        )
        try:
            async with self.ctx.db.begin() as s:
                if await s.scalar(select(AdminUser.id).where(AdminUser.username == username)):
                    raise Conflict(f"admin {username} already exists")
                s.add(user)
        except IntegrityError as exc:
            raise Conflict(f"admin {username} already exists") from exc
        return user

    async def ensure(self, username: str, password: str) -> bool:
        """Create ``username`` if missing (the ADMIN_PASSWORD bootstrap); True if created."""
        async with self.ctx.db.begin() as s:
            if await s.scalar(select(AdminUser.id).where(AdminUser.username == username)):
                return False
        try:
            await self.create(username, password)
        except Conflict:
            return False
        return True

    async def authenticate(self, username: str, password: str) -> AdminUser:
        async with self.ctx.db.begin() as s:
            user = await s.scalar(select(AdminUser).where(AdminUser.username == username))
        stored = user.password_hash if user is not None else _dummy()
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError) as exc:
            raise InvalidCredentials("wrong username or password") from exc
        if user is None or user.disabled:
            raise InvalidCredentials("wrong username or password")
        return user

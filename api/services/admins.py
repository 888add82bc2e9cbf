"""Admin accounts: passwords kept only as argon2 hashes, one throttle on failed
logins (the JSON API and the dashboard's form alike), and token versions that
logging out increases.
"""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from api.errors import Conflict, InvalidCredentials, InvalidRequest, Unauthorized
from api.services.context import Context
from api.services.ratelimit import FailureLimiter
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
LOGIN_FAILURES = 5  # per username and source address ...
LOGIN_WINDOW_S = 300  # ... in this window


def valid_username(username: str) -> bool:
    return 1 <= len(username) <= 64 and all(c.isalnum() or c in "._-@" for c in username)


class Admins:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.throttle = FailureLimiter(
            window_s=LOGIN_WINDOW_S,
            limits={"login": LOGIN_FAILURES},
            what="failed logins",
            name="admin",
            store=ctx.budgets,
        )

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

    async def login(self, username: str, password: str, source: str) -> AdminUser:
        """``authenticate`` behind the throttle: RateLimited after too many failures."""
        keys = {"login": f"{username.strip().lower()}|{source}"}
        now = self.ctx.clock.now()
        spent = await self.throttle.spend(keys, now)  # only failures stay spent
        try:
            user = await self.authenticate(username, password)
        except InvalidCredentials:
            raise
        except BaseException:
            await self.throttle.give_back(spent, now)
            raise
        await self.throttle.give_back(spent, now)
        return user

    async def check_session(self, username: str, version: int) -> None:
        """Unauthorized unless ``username`` is active and ``version`` is current."""
        async with self.ctx.db() as s:
            user = await s.scalar(select(AdminUser).where(AdminUser.username == username))
        if user is None or user.disabled:
            raise Unauthorized("this account is no longer active")
        if user.token_version != version:
            raise Unauthorized("you have logged out; log in again")

    async def log_out(self, username: str) -> None:
        """Every token and session cookie issued to ``username`` so far stops working."""
        async with self.ctx.db.begin() as s:
            await s.execute(
                update(AdminUser)
                .where(AdminUser.username == username)
                .values(token_version=AdminUser.token_version + 1)
            )

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

"""Users of the dashboard and the admin API (the ``admin_users`` table): one role each
(``api.services.rights``), an optional scope to locations, passwords kept only as
argon2 hashes, one throttle on failed logins (the JSON API and the dashboard's form
alike), and token versions that logging out, a new password or disabling increases.
Every change is written to the audit trail in its own transaction.
"""

from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from api.errors import (
    Conflict,
    InvalidCredentials,
    InvalidRequest,
    LastAdmin,
    NotFound,
    Unauthorized,
)
from api.services import audit
from api.services.context import Context
from api.services.ratelimit import FailureLimiter
from api.services.rights import ROLES, Principal, clean_locations
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


@dataclass(frozen=True)
class UserChange:
    role: str | None = None
    disabled: bool | None = None
    password: str | None = None
    locations: list[str] | None = None
    locations_set: bool = False  # locations given (None then means every location)
    reason: str | None = None


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"password must be at least {MIN_PASSWORD} characters")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidRequest(f"role must be {', '.join(ROLES[:-1])} or {ROLES[-1]}")


def principal_of(user: AdminUser) -> Principal:
    scope = None if user.locations is None else tuple(user.locations)
    return Principal(username=user.username, role=user.role, locations=scope)


def _public(user: AdminUser) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role,
        "disabled": bool(user.disabled),
        "locations": None if user.locations is None else list(user.locations),
    }


def as_json(user: AdminUser) -> dict[str, Any]:
    return {**_public(user), "created_at": user.created_at}


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

    async def create(
        self,
        username: str,
        password: str,
        role: str = "admin",
        locations: list[str] | None = None,
        *,
        by: str = audit.CLI,
    ) -> AdminUser:
        if not valid_username(username):
            raise InvalidRequest("username: 1-64 letters, digits or ._-@")
        check_password(password)
        check_role(role)
        scope = clean_locations(locations)
        user = AdminUser(
            username=username,
            password_hash=_hasher.hash(password),
            disabled=False,
            created_at=self.ctx.clock.now(),
            role=role,
            locations=None if scope is None else list(scope),
        )
        try:
            async with self.ctx.db.begin() as s:
                if await s.scalar(select(AdminUser.id).where(AdminUser.username == username)):
                    raise Conflict(f"user {username} already exists")
                s.add(user)
                audit.record(
                    s,
                    by,
                    "user_created",
                    f"user:{username}",
                    None,
                    _public(user),
                    None,
                    at=user.created_at,
                )
        except IntegrityError as exc:
            raise Conflict(f"user {username} already exists") from exc
        return user

    async def users(self) -> list[AdminUser]:
        async with self.ctx.db() as s:
            return list((await s.scalars(select(AdminUser).order_by(AdminUser.username))).all())

    async def change(self, username: str, change: "UserChange", *, by: str) -> AdminUser:
        """Apply ``change``; Conflict rather than leave no active admin behind."""
        if change.role is not None:
            check_role(change.role)
        if change.password is not None:
            check_password(change.password)
        async with self.ctx.db.begin() as s:
            user = await s.scalar(
                select(AdminUser).where(AdminUser.username == username).with_for_update()
            )
            if user is None:
                raise NotFound(f"no user {username}")
            before = _public(user)
            if change.role is not None:
                user.role = change.role
            if change.disabled is not None:
                user.disabled = change.disabled
            if change.locations_set:
                scope = clean_locations(change.locations)
                user.locations = None if scope is None else list(scope)
            if change.password is not None:
                user.password_hash = _hasher.hash(change.password)
            if change.password is not None or (change.disabled and not before["disabled"]):
                user.token_version += 1  # every session and token of theirs ends
            was_admin = before["role"] == "admin" and not before["disabled"]
            if was_admin and (user.role != "admin" or user.disabled):
                await self._keep_an_admin(s, user)
            after = _public(user)
            if change.password is not None:
                after["new_password"] = True
            audit.record(
                s,
                by,
                "user_changed",
                f"user:{username}",
                before,
                after,
                change.reason,
                at=self.ctx.clock.now(),
            )
        return user

    @staticmethod
    async def _keep_an_admin(s: Any, leaving: AdminUser) -> None:
        others = await s.scalar(
            select(func.count(AdminUser.id)).where(
                AdminUser.role == "admin",
                AdminUser.disabled.is_(False),
                AdminUser.id != leaving.id,
            )
        )
        if not others:
            raise LastAdmin(
                f"{leaving.username} is the last active admin; make another user admin first"
            )

    async def ensure(self, username: str, password: str) -> bool:
        """Create ``username`` if missing (the ADMIN_PASSWORD bootstrap); True if created."""
        async with self.ctx.db.begin() as s:
            if await s.scalar(select(AdminUser.id).where(AdminUser.username == username)):
                return False
        try:
            await self.create(username, password, by="setup")
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

    async def check_session(self, username: str, version: int) -> Principal:
        """Who holds a token: Unauthorized unless ``username`` is active and ``version``
        is current. Read at every request, so a new role or a disabling counts at once."""
        async with self.ctx.db() as s:
            user = await s.scalar(select(AdminUser).where(AdminUser.username == username))
        if user is None or user.disabled:
            raise Unauthorized("this account is no longer active")
        if user.token_version != version:
            raise Unauthorized("you have logged out; log in again")
        return principal_of(user)

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

"""Shoppers' feedback as operators read it: per order, per machine, per day."""

from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, func, select

from api.services.context import Context
from api.views.admin import DAY_S
from schema.models import Feedback

RECENT_DAYS = 30


@dataclass(frozen=True)
class Tally:
    up: int = 0
    down: int = 0

    @property
    def count(self) -> int:
        return self.up + self.down

    @property
    def share_up(self) -> float | None:
        """The share of thumbs-up, 0..1; None when nobody rated."""
        return self.up / self.count if self.count else None


def _count(rating: str) -> ColumnElement[int]:
    return func.sum(case((Feedback.rating == rating, 1), else_=0))


def _tally_columns() -> tuple[ColumnElement[int], ColumnElement[int]]:
    return _count("up"), _count("down")


class FeedbackViews:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def of_order(self, order_id: str) -> Feedback | None:
        async with self.ctx.db() as s:
            found: Feedback | None = await s.scalar(
                select(Feedback).where(Feedback.order_id == order_id)
            )
            return found

    async def recent(self, machine_id: str | None = None, limit: int = 10) -> list[Feedback]:
        query = select(Feedback).order_by(Feedback.created_at.desc(), Feedback.id.desc())
        if machine_id is not None:
            query = query.where(Feedback.machine_id == machine_id)
        async with self.ctx.db() as s:
            return list((await s.scalars(query.limit(limit))).all())

    async def tally(self, machine_id: str | None = None, since: int | None = None) -> Tally:
        """Thumbs up and down of one machine (or all) since ``since`` (default 30 days)."""
        start = self.ctx.clock.now() - RECENT_DAYS * DAY_S if since is None else since
        up, down = _tally_columns()
        query = select(up, down).where(Feedback.created_at >= start)
        if machine_id is not None:
            query = query.where(Feedback.machine_id == machine_id)
        async with self.ctx.db() as s:
            row = (await s.execute(query)).one()
        return Tally(int(row[0] or 0), int(row[1] or 0))

    async def per_machine(self, since: int) -> dict[str, Tally]:
        up, down = _tally_columns()
        query = (
            select(Feedback.machine_id, up, down)
            .where(Feedback.created_at >= since)
            .group_by(Feedback.machine_id)
        )
        async with self.ctx.db() as s:
            rows = (await s.execute(query)).all()
        return {mid: Tally(int(u or 0), int(d or 0)) for mid, u, d in rows}

    async def per_day(self, days: list[int]) -> dict[int, Tally]:
        """Thumbs up and down of the whole fleet on each local day of ``days``."""
        up, down = _tally_columns()
        day = self.ctx.calendar.bucket(Feedback.created_at, days[0], self.ctx.clock.now() + 1)
        query = select(day, up, down).where(Feedback.created_at >= days[0]).group_by(day)
        async with self.ctx.db() as s:
            rows = (await s.execute(query)).all()
        found = {int(d): Tally(int(u or 0), int(n or 0)) for d, u, n in rows}
        return {d: found.get(d, Tally()) for d in days}

"""Which local days a sales report covers: a day, a week, a month or a range (pure).

Every boundary is a local midnight in ``TIMEZONE``. A week runs Monday to Sunday.
A day's report is split into hours, every other period into days. A range is at
most ``MAX_RANGE_DAYS`` days, so one request never asks for years of rows.
"""

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from api.clock import LocalCalendar
from api.errors import InvalidRequest

MAX_RANGE_DAYS = 366
HOUR_S = 3600
FIRST_YEAR, LAST_YEAR = 2000, 2099
DATE_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_DATE = re.compile(DATE_PATTERN)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    RANGE = "range"


class Group(StrEnum):
    MACHINE = "machine"
    LOCATION = "location"
    PRODUCT = "product"
    SLOT = "slot"


@dataclass(frozen=True)
class Window:
    """[since, until) in Unix seconds, from the local midnight of ``first`` to the one
    after ``last``; ``buckets`` are the chart's bars (hours for a day, else days)."""

    period: Period
    first: dt.date
    last: dt.date  # inclusive
    since: int
    until: int
    buckets: tuple[int, ...]
    hourly: bool

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def title(self) -> str:
        if self.period is Period.DAY:
            return self.first.strftime("%a %-d %b %Y")
        if self.period is Period.MONTH:
            return self.first.strftime("%B %Y")
        return f"{self.first.strftime('%-d %b %Y')} to {self.last.strftime('%-d %b %Y')}"

    def step(self, direction: int) -> dt.date:
        """The date that opens the previous (-1) or next (+1) period of the same kind."""
        if self.period is Period.MONTH:
            month = self.first.month - 1 + direction
            return dt.date(self.first.year + month // 12, month % 12 + 1, 1)
        return self.first + dt.timedelta(days=direction * self.days)


def parse_date(text: str, name: str) -> dt.date:
    """``YYYY-MM-DD`` (years 2000 to 2099), else InvalidRequest naming the field."""
    if not _DATE.match(text):
        raise InvalidRequest(f"{name} must be a date like 2026-12-04")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {text} is not a day of the calendar") from exc


def window(
    calendar: LocalCalendar,
    now: int,
    period: Period,
    on: dt.date | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Window:
    """The report's window: the ``period`` holding ``on`` (default: today), or for a
    range ``start`` to ``end`` (both included)."""
    today = calendar.local(now).date()
    on = on or today
    if period is Period.DAY:
        first = last = on
    elif period is Period.WEEK:
        first = on - dt.timedelta(days=on.weekday())
        last = first + dt.timedelta(days=6)
    elif period is Period.MONTH:
        first = on.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        last = following - dt.timedelta(days=1)
    else:
        if start is None or end is None:
            raise InvalidRequest("a range needs both from and to")
        if end < start:
            raise InvalidRequest("to must not come before from")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise InvalidRequest(f"a range is at most {MAX_RANGE_DAYS} days")
        first, last = start, end
    if not (first.year >= FIRST_YEAR and last.year <= LAST_YEAR):
        raise InvalidRequest(f"reports cover the years {FIRST_YEAR} to {LAST_YEAR}")
    since = calendar.midnight(first)
    until = calendar.midnight(last + dt.timedelta(days=1))
    hourly = period is Period.DAY
    if hourly:
        buckets = tuple(range(since, until, HOUR_S))
    else:
        days = []
        day = since
        while day < until:
            days.append(day)
            day = calendar.next_day(day)
        buckets = tuple(days)
    return Window(period, first, last, since, until, buckets, hourly)


def bucket_of(window: Window, ts: int) -> int | None:
    """The start of the bar holding ``ts`` (None outside the window)."""
    if not window.since <= ts < window.until:
        return None
    found = None
    for start in window.buckets:
        if start > ts:
            break
        found = start
    return found


QUERY_NAMES = frozenset({"period", "date", "from", "to", "group"})


def from_query(params: dict[str, str], calendar: LocalCalendar, now: int) -> tuple[Window, Group]:
    """A report's window and grouping from ``period``, ``date``, ``from``, ``to`` and
    ``group`` (all optional: this week by machine); InvalidRequest names what is wrong."""
    period_text = params.get("period", Period.WEEK.value)
    group_text = params.get("group", Group.MACHINE.value)
    try:
        period, group = Period(period_text), Group(group_text)
    except ValueError as exc:
        raise InvalidRequest(
            "period must be day, week, month or range; "
            "group must be machine, location, product or slot"
        ) from exc
    dates = {n: parse_date(params[n], n) for n in ("date", "from", "to") if n in params}
    if period is Period.RANGE and "date" in dates:
        raise InvalidRequest("a range takes from and to, not date")
    if period is not Period.RANGE and ("from" in dates or "to" in dates):
        raise InvalidRequest("from and to go with period=range; use date for the others")
    found = window(calendar, now, period, dates.get("date"), dates.get("from"), dates.get("to"))
    return found, group

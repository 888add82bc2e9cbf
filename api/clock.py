"""The clock port (services take ``now`` from it, tests move it by hand) and the local calendar."""

import datetime as dt
import time
from itertools import pairwise
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case

DEFAULT_TIMEZONE = "Asia/Kolkata"
DAY_S = 86_400


class Clock(Protocol):
    def now(self) -> int:
        """Unix seconds."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: int = 1_800_000_000) -> None:
        self.value = start

    def now(self) -> int:
        return self.value

    def advance(self, seconds: int) -> int:
        self.value += seconds
        return self.value


class LocalCalendar:
    """Days as the operator lives them: local midnights in ``TIMEZONE``, not UTC ones.

    Every "today", every chart day and every report day starts at a local midnight.
    A day is named by the Unix second of that midnight; it usually lasts 86,400 s
    (23 or 25 hours across a daylight-saving change).
    """

    def __init__(self, name: str = DEFAULT_TIMEZONE) -> None:
        try:
            self.zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {name!r} (an IANA name, like Asia/Kolkata)"
            ) from exc
        self.name = name

    def local(self, ts: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, self.zone)

    def day_start(self, ts: int) -> int:
        """The local midnight at or before ``ts``."""
        midnight = self.local(ts).replace(hour=0, minute=0, second=0, microsecond=0)
        return int(midnight.timestamp())

    def next_day(self, day: int) -> int:
        """The local midnight after the day that starts at ``day``."""
        date = self.local(day).date() + dt.timedelta(days=1)
        return self.midnight(date)

    def midnight(self, date: dt.date) -> int:
        """The Unix second of ``date``'s local midnight."""
        return int(dt.datetime.combine(date, dt.time(), self.zone).timestamp())

    def days(self, now: int, count: int) -> list[int]:
        """The last ``count`` local days up to and including today, oldest first."""
        today = self.local(now).date()
        return [self.midnight(today - dt.timedelta(days=i)) for i in range(count - 1, -1, -1)]

    def offset_s(self, ts: int) -> int:
        offset = self.local(ts).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def bucket(self, column: Any, since: int, until: int) -> Any:
        """A SQL expression: the local day start of ``column``, for values in [since, until).

        Local midnight = floor((t + offset) / day) * day - offset while the offset holds;
        one branch per offset in force during the range (one, outside daylight saving).
        """
        spans: list[tuple[int, int]] = []  # (from, offset) in time order
        day = self.day_start(since)
        while day < until:
            offset = self.offset_s(day)
            if not spans or spans[-1][1] != offset:
                spans.append((day, offset))
            day = self.next_day(day)

        def start_of(offset: int) -> Any:
            return ((column + offset) // DAY_S) * DAY_S - offset

        if len(spans) <= 1:
            return start_of(spans[0][1] if spans else self.offset_s(since))
        return case(
            *[(column < nxt, start_of(off)) for (_, off), (nxt, _) in pairwise(spans)],
            else_=start_of(spans[-1][1]),
        )

    def text(self, ts: int, pattern: str = "%Y-%m-%d %H:%M") -> str:
        return self.local(ts).strftime(pattern)

    def iso(self, ts: int) -> str:
        """ISO 8601 with the local offset: 2026-12-04T11:30:00+05:30 (what spreadsheets read)."""
        return self.local(ts).isoformat(timespec="seconds")

"""Operators' days: local midnights in TIMEZONE, in Python and in SQL alike."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select

from api.clock import LocalCalendar
from api.errors import ConfigurationError
from api.settings import Settings

KOLKATA = LocalCalendar("Asia/Kolkata")
BERLIN = LocalCalendar("Europe/Berlin")  # daylight saving: 23- and 25-hour days
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def test_a_kolkata_day_starts_at_local_midnight() -> None:
    ts = int(dt.datetime(2026, 12, 4, 0, 30, tzinfo=IST).timestamp())  # 19:00 UTC on the 3rd
    assert KOLKATA.day_start(ts) == int(dt.datetime(2026, 12, 4, tzinfo=IST).timestamp())
    assert KOLKATA.next_day(KOLKATA.day_start(ts)) - KOLKATA.day_start(ts) == 86_400
    assert KOLKATA.iso(ts) == "2026-12-04T00:30:00+05:30"
    assert KOLKATA.text(ts, "%d %b %H:%M %Z") == "04 Dec 00:30 IST"
    days = KOLKATA.days(ts, 3)
    assert [KOLKATA.text(d, "%m-%d %H:%M") for d in days] == ["12-02 00:00", "12-03 00:00",
                                                              "12-04 00:00"]  # fmt: skip


def test_daylight_saving_days_are_23_and_25_hours() -> None:
    spring = BERLIN.midnight(dt.date(2026, 3, 29))
    autumn = BERLIN.midnight(dt.date(2026, 10, 25))
    assert BERLIN.next_day(spring) - spring == 23 * 3600
    assert BERLIN.next_day(autumn) - autumn == 25 * 3600


def test_an_unknown_zone_is_refused_at_start() -> None:
    assert Settings.from_env({}).timezone == "Asia/Kolkata"
    assert Settings.from_env({"SMARTVEND_TIMEZONE": "Europe/Berlin"}).timezone == "Europe/Berlin"
    with pytest.raises(ConfigurationError, match="SMARTVEND_TIMEZONE"):
        Settings.from_env({"SMARTVEND_TIMEZONE": "Mars/Olympus"})


@pytest.fixture(scope="module")
def table() -> tuple[object, Table]:
    engine = create_engine("sqlite://")
    meta = MetaData()
    rows = Table("t", meta, Column("id", Integer, primary_key=True), Column("ts", Integer))
    meta.create_all(engine)
    return engine, rows


@pytest.mark.parametrize("calendar", [KOLKATA, BERLIN], ids=["Asia/Kolkata", "Europe/Berlin"])
@settings(max_examples=40, deadline=None)
@given(
    since=st.integers(min_value=1_767_225_600, max_value=1_798_761_600),  # 2026
    offsets=st.lists(st.integers(min_value=0, max_value=60 * 86_400), min_size=1, max_size=20),
)
def test_the_sql_bucket_is_the_local_day_start(
    table: tuple[object, Table], calendar: LocalCalendar, since: int, offsets: list[int]
) -> None:
    engine, rows = table
    stamps = [since + o for o in offsets]
    until = max(stamps) + 1
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(rows.delete())
        conn.execute(insert(rows), [{"ts": ts} for ts in stamps])
        found = conn.execute(
            select(rows.c.ts, calendar.bucket(rows.c.ts, since, until)).order_by(rows.c.id)
        ).all()
    assert [(ts, int(day)) for ts, day in found] == [(ts, calendar.day_start(ts)) for ts in stamps]

"""Each machine's figures for the local day: the retained ``today`` topic.

The day is the local one (``TIMEZONE``). Vends are the units that came out since
local midnight; sales are those units at each order's unit price, less what
operators refunded by hand since midnight (as the dashboard counts them). The
figures reset to zero at local midnight (``since`` moves on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.clock import LocalCalendar
from api.services import refund_totals
from schema.models import Command, Machine, OrderLine

if TYPE_CHECKING:
    from schema.messages import TodayMsg


def local_day(now: int, calendar: LocalCalendar) -> tuple[str, int]:
    """``("YYYY-MM-DD", Unix time of its local midnight)`` for the day holding ``now``."""
    return calendar.local(now).date().isoformat(), calendar.day_start(now)


async def sold_since(
    s: AsyncSession,
    calendar: LocalCalendar,
    since: int,
    now: int,
    machine_id: str | None = None,
) -> dict[str, tuple[int, int]]:
    """``{machine_id: (units, paise)}`` sold since ``since`` (net of manual refunds), for
    every machine or only ``machine_id``."""
    query = (
        select(
            Command.machine_id,
            func.sum(OrderLine.dispensed),
            func.sum(OrderLine.dispensed * OrderLine.unit_amount),
        )
        .join(OrderLine, OrderLine.order_id == Command.order_id)
        .where(Command.finished_at >= since, Command.dispensed > 0)
        .group_by(Command.machine_id)
    )
    if machine_id is not None:
        query = query.where(Command.machine_id == machine_id)
    sold = {mid: (int(u or 0), int(a or 0)) for mid, u, a in (await s.execute(query)).all()}
    refunded = await refund_totals.manual_by_machine_day(s, calendar, since, now, machine_id)
    for (mid, _day), amount in refunded.items():
        units, gross = sold.get(mid, (0, 0))
        sold[mid] = (units, gross - amount)
    return sold


def today_payload(
    machine: Machine, day: str, since: int, sold: tuple[int, int], now: int
) -> TodayMsg:
    units, amount = sold
    return {
        "day": day,
        "since": since,
        "vends": units,
        "amount": amount,
        "currency": machine.currency,
        "fw": machine.fw,
        "ts": now,
    }

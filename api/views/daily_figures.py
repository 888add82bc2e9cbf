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
from api.services.refund_totals import Machines
from schema.models import Command, Machine, OrderLine

if TYPE_CHECKING:
    from schema.messages import TodayMsg


def local_day(now: int, calendar: LocalCalendar) -> tuple[str, int]:
    """``("YYYY-MM-DD", Unix time of its local midnight)`` for the day holding ``now``."""
    return calendar.local(now).date().isoformat(), calendar.day_start(now)


async def sold_since(
    s: AsyncSession, calendar: LocalCalendar, since: int, now: int, machines: Machines = None
) -> dict[str, tuple[int, int]]:
    """``{machine_id: (units, paise)}`` sold since ``since`` (net of manual refunds), for
    every machine or only ``machines``."""
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
    if machines is not None:
        query = query.where(Command.machine_id.in_(machines))
    sold = {mid: (int(u or 0), int(a or 0)) for mid, u, a in (await s.execute(query)).all()}
    refunded = await refund_totals.manual_by_machine_day(s, calendar, since, now, machines)
    for (mid, _day), amount in refunded.items():
        units, gross = sold.get(mid, (0, 0))
        sold[mid] = (units, gross - amount)
    return sold


async def sales_finished_since(s: AsyncSession, mark: int) -> list[tuple[str, str]]:
    """``(command id, machine id)`` of every command that dispensed and finished at or
    after ``mark``: the machines whose figures a sale changed since then."""
    query = select(Command.id, Command.machine_id).where(
        Command.finished_at >= mark, Command.dispensed > 0
    )
    return [(cid, mid) for cid, mid in (await s.execute(query)).all()]


async def manual_refunds_by_machine(
    s: AsyncSession, calendar: LocalCalendar, since: int, now: int
) -> dict[str, int]:
    """Paise operators refunded by hand since ``since``, per machine (few a day)."""
    out: dict[str, int] = {}
    for (mid, _day), amount in (
        await refund_totals.manual_by_machine_day(s, calendar, since, now)
    ).items():
        out[mid] = out.get(mid, 0) + amount
    return out


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

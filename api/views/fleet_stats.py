"""Numbers over time for the dashboard's charts: sales per day and fleet uptime.

Uptime is measured from telemetry: a machine counts as up during a ten-minute
slot in which it sent at least one telemetry message (machines send one every
minute by default).  Slots before a machine was registered do not count.
"""

from dataclasses import dataclass, field

from sqlalchemy import func, select

from api.services import refund_totals
from api.services.context import Context
from schema.models import Command, Machine, OrderLine, Telemetry

SLOT_S = 600


@dataclass
class DailyTable:
    """One value per machine per UTC day; ``None`` where there is nothing to measure."""

    days: list[int]
    machines: list[tuple[str, str]]  # (machine_id, name)
    values: dict[tuple[str, int], float] = field(default_factory=dict)

    def value(self, machine_id: str, day: int) -> float | None:
        return self.values.get((machine_id, day))

    def day_total(self, day: int) -> float:
        return sum(v for (_, d), v in self.values.items() if d == day)

    def day_mean(self, day: int) -> float | None:
        found = [v for (_, d), v in self.values.items() if d == day]
        return sum(found) / len(found) if found else None


class FleetStats:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def _machines(self, machine_id: str | None) -> list[tuple[str, str, int]]:
        async with self.ctx.db() as s:
            query = select(Machine.id, Machine.name, Machine.created_at).order_by(
                Machine.name, Machine.id
            )
            if machine_id is not None:
                query = query.where(Machine.id == machine_id)
            return [(m, n, c) for m, n, c in (await s.execute(query)).all()]

    async def sales_per_day(
        self, days: int = 14, machine_id: str | None = None
    ) -> tuple[DailyTable, DailyTable]:
        """(amount in paise net of manual refunds, units) per machine per day, last ``days``."""
        now = self.ctx.clock.now()
        machines = await self._machines(machine_id)
        calendar = self.ctx.calendar
        day_list = calendar.days(now, days)
        amounts = DailyTable(day_list, [(m, n) for m, n, _ in machines])
        units = DailyTable(day_list, amounts.machines)
        day = calendar.bucket(Command.finished_at, day_list[0], now + 1)
        query = (
            select(
                Command.machine_id,
                day,
                func.sum(OrderLine.dispensed),
                # Each line at its own price (an order of several products).
                func.sum(OrderLine.dispensed * OrderLine.unit_amount),
            )
            .join(OrderLine, OrderLine.order_id == Command.order_id)
            .where(Command.finished_at >= day_list[0], Command.dispensed > 0)
            .group_by(Command.machine_id, day)
        )
        if machine_id is not None:
            query = query.where(Command.machine_id == machine_id)
        async with self.ctx.db() as s:
            for mid, d, count, amount in (await s.execute(query)).all():
                units.values[(mid, int(d or 0))] = float(count or 0)
                amounts.values[(mid, int(d or 0))] = float(amount or 0)
            refunded = await refund_totals.manual_by_machine_day(
                s, calendar, day_list[0], now, None if machine_id is None else [machine_id]
            )
        for key, amount in refunded.items():
            amounts.values[key] = amounts.values.get(key, 0.0) - amount
        return amounts, units

    async def uptime(self, days: int = 7, machine_id: str | None = None) -> DailyTable:
        """Per machine and day, the percentage of ten-minute slots with telemetry."""
        now = self.ctx.clock.now()
        machines = await self._machines(machine_id)
        calendar = self.ctx.calendar
        table = DailyTable(calendar.days(now, days), [(m, n) for m, n, _ in machines])
        slot = Telemetry.ts // SLOT_S
        query = (
            select(Telemetry.machine_id, slot)
            .where(Telemetry.ts >= table.days[0], Telemetry.ts <= now)
            .group_by(Telemetry.machine_id, slot)
        )
        if machine_id is not None:
            query = query.where(Telemetry.machine_id == machine_id)
        seen: dict[tuple[str, int], int] = {}
        async with self.ctx.db() as s:
            for mid, n in (await s.execute(query)).all():
                key = (mid, calendar.day_start(int(n) * SLOT_S))
                seen[key] = seen.get(key, 0) + 1
        for mid, _, created in machines:
            for d in table.days:
                start = max(d, created - created % SLOT_S)
                end = min(calendar.next_day(d), now - now % SLOT_S + SLOT_S)
                possible = (end - start) // SLOT_S
                if possible > 0:
                    table.values[(mid, d)] = min(100.0, 100.0 * seen.get((mid, d), 0) / possible)
        return table

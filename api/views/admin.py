"""Read models for the operator's dashboard: the fleet and one machine. No writes here.

Days are local days (``TIMEZONE``); "today's sales" are the units a machine reported
out since local midnight, at each order's unit price, less what operators refunded by
hand today (the automatic refund of units that did not come out is never in
the sales to begin with).
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from api.errors import MachineNotFound
from api.lifecycle.states import SHORT, SessionStatus, ordered
from api.services import refund_totals
from api.services.alerts import Alerts
from api.services.context import Context
from api.views import daily_figures
from schema.models import (
    AdminUser,
    Command,
    DeviceEvent,
    Feedback,
    Machine,
    Telemetry,
    VendSession,
)

DAY_S = refund_totals.DAY_S
FAILED_STATES = ordered(SHORT)


@dataclass(frozen=True)
class FleetRow:
    machine_id: str
    name: str
    location: str | None
    online: bool
    last_seen: int | None
    stock: int
    capacity: int
    threshold: int
    price_amount: int
    currency: str
    mode: str
    reported_mode: str | None
    busy: bool
    fw: str | None
    desired_version: int
    reported_version: int | None
    key_revoked: bool
    units_today: int
    sales_today: int
    rated_up_today: int = 0
    rated_down_today: int = 0
    own_threshold: int | None = None  # the machine's own low-stock threshold, if set

    @property
    def low_stock(self) -> bool:
        return self.stock <= self.threshold

    @property
    def applied(self) -> bool:
        return self.reported_version == self.desired_version


class AdminViews:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def admin_active(self, username: str) -> bool:
        """True while ``username`` exists and is not disabled (a cookie outlives neither)."""
        async with self.ctx.db() as s:
            disabled = await s.scalar(
                select(AdminUser.disabled).where(AdminUser.username == username)
            )
        return disabled is False

    async def fleet(self, machine_id: str | None = None) -> list[FleetRow]:
        now = self.ctx.clock.now()
        today = self.ctx.calendar.day_start(now)
        alerts = Alerts(self.ctx)
        async with self.ctx.db() as s:
            query = select(Machine).order_by(Machine.name, Machine.id)
            if machine_id is not None:
                query = query.where(Machine.id == machine_id)
            else:  # a decommissioned machine keeps its own page, history and reports
                query = query.where(Machine.removed_at.is_(None))
            machines = (await s.scalars(query)).all()
            busy = set(
                (
                    await s.scalars(
                        select(VendSession.machine_id).where(
                            VendSession.status == SessionStatus.ACTIVE, VendSession.expires_at > now
                        )
                    )
                ).all()
            )
            sales = await daily_figures.sold_since(
                s, self.ctx.calendar, today, now, None if machine_id is None else [machine_id]
            )
            ratings_query = (
                select(Feedback.machine_id, Feedback.rating, func.count())
                .where(Feedback.created_at >= today)
                .group_by(Feedback.machine_id, Feedback.rating)
            )
            ratings = {(mid, r): int(n) for mid, r, n in await s.execute(ratings_query)}
        return [
            FleetRow(
                machine_id=m.id,
                name=m.name,
                location=m.location,
                online=m.online,
                last_seen=m.last_seen,
                stock=m.stock,
                capacity=m.capacity,
                threshold=alerts.threshold(m),
                price_amount=m.price_amount,
                currency=m.currency,
                mode=m.mode,
                reported_mode=m.reported_mode,
                busy=m.id in busy,
                fw=m.fw,
                desired_version=m.desired_version,
                reported_version=m.reported_version,
                key_revoked=m.key_revoked,
                units_today=sales.get(m.id, (0, 0))[0],
                sales_today=sales.get(m.id, (0, 0))[1],
                rated_up_today=ratings.get((m.id, "up"), 0),
                rated_down_today=ratings.get((m.id, "down"), 0),
                own_threshold=m.low_stock_threshold,
            )
            for m in machines
        ]

    async def machine(self, machine_id: str) -> FleetRow:
        rows = await self.fleet(machine_id)
        if not rows:
            raise MachineNotFound(f"no machine {machine_id}")
        return rows[0]

    async def events(self, machine_id: str, limit: int = 30) -> list[DeviceEvent]:
        async with self.ctx.db() as s:
            rows = await s.scalars(
                select(DeviceEvent)
                .where(DeviceEvent.machine_id == machine_id)
                .order_by(DeviceEvent.id.desc())
                .limit(limit)
            )
            return list(rows.all())

    async def failed_commands(self, machine_id: str, limit: int = 10) -> list[Command]:
        async with self.ctx.db() as s:
            rows = await s.scalars(
                select(Command)
                .where(Command.machine_id == machine_id, Command.status.in_(FAILED_STATES))
                .order_by(Command.issued_at.desc())
                .limit(limit)
            )
            return list(rows.all())

    async def telemetry(
        self, machine_id: str, since: int, max_points: int = 240
    ) -> dict[str, list[tuple[int, float]]]:
        """Each numeric telemetry field as (ts, value) points, thinned to ``max_points``."""
        async with self.ctx.db() as s:
            rows = (
                await s.execute(
                    select(Telemetry.ts, Telemetry.data)
                    .where(Telemetry.machine_id == machine_id, Telemetry.ts >= since)
                    .order_by(Telemetry.ts)
                    .limit(20_000)
                )
            ).all()
        step = max(1, len(rows) // max_points)
        series: dict[str, list[tuple[int, float]]] = {}
        for ts, data in rows[::step]:
            for key, value in _numbers(data):
                series.setdefault(key, []).append((ts, value))
        return dict(sorted(series.items()))


def _numbers(data: Any) -> list[tuple[str, float]]:
    if not isinstance(data, dict):
        return []
    return [
        (str(k), float(v))
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]

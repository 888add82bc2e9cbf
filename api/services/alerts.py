"""Operator alerts: recorded here, mailed by the alert sender.

Low stock alerts fire once per crossing of a machine's threshold: the flag is
cleared only when a restock lifts the stock above it again.
"""

from typing import Any

from sqlalchemy import select

from api.services import webhooks_out
from api.services.context import Context
from schema.models import Alert, Machine


class Alerts:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def threshold(self, machine: Machine) -> int:
        if machine.low_stock_threshold is not None:
            return machine.low_stock_threshold
        return self.ctx.policy.low_stock_threshold

    async def check_low_stock(self) -> list[dict[str, Any]]:
        """Raise an alert for every machine that fell to its threshold; returns them."""
        now = self.ctx.clock.now()
        raised: list[dict[str, Any]] = []
        async with self.ctx.db.begin() as s:
            machines = (
                await s.scalars(
                    select(Machine)
                    .where(Machine.low_stock_alerted.is_(False), Machine.removed_at.is_(None))
                    .with_for_update()
                )
            ).all()
            for machine in machines:
                limit = self.threshold(machine)
                if machine.stock > limit:
                    continue
                machine.low_stock_alerted = True
                message = (
                    f"{machine.name} ({machine.id}) is low on stock: "
                    f"{machine.stock} of {machine.capacity} left (threshold {limit})."
                )
                s.add(
                    Alert(kind="low_stock", machine_id=machine.id, message=message, created_at=now)
                )
                raised.append(
                    {"machine_id": machine.id, "stock": machine.stock, "threshold": limit}
                )
            await webhooks_out.alerts_raised(s, now)
        return raised

    async def recent(self, limit: int = 100) -> list[Alert]:
        async with self.ctx.db.begin() as s:
            rows = await s.scalars(select(Alert).order_by(Alert.id.desc()).limit(limit))
            return list(rows.all())

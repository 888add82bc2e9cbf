"""Operator alerts: recorded here, mailed by the alert sender.

Low stock alerts fire once per crossing of a machine's threshold: the flag is
cleared only when a restock lifts the stock above it again. A machine may have a
threshold of its own (``set_threshold``); without one, ``LOW_STOCK_THRESHOLD``
holds. On a machine with several slots, each slot is checked against it too.
"""

from typing import Any

from sqlalchemy import ColumnElement, func, select

from api.errors import InvalidRequest, MachineNotFound
from api.services import audit, webhooks_out
from api.services.context import Context
from schema.models import Alert, Machine


class Alerts:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def threshold(self, machine: Machine) -> int:
        if machine.low_stock_threshold is not None:
            return machine.low_stock_threshold
        return self.ctx.policy.low_stock_threshold

    def threshold_sql(self) -> ColumnElement[int]:
        """:meth:`threshold` in SQL: a check asks the database for the machines (or slots)
        at or under it, so its cost follows the alerts to raise, not the fleet."""
        return func.coalesce(Machine.low_stock_threshold, self.ctx.policy.low_stock_threshold)

    async def set_threshold(self, machine_id: str, threshold: int | None, *, by: str) -> Machine:
        """The machine's own low-stock threshold, 0 to its capacity (None: the default).

        A threshold now below the stock lets the alert fire again at the next crossing;
        one at or above it raises the alert at the next check.
        """
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await s.get(Machine, machine_id, with_for_update=True)
            if machine is None or machine.removed_at is not None:
                raise MachineNotFound(f"no machine {machine_id}")
            if threshold is not None and not 0 <= threshold <= machine.capacity:
                raise InvalidRequest(f"the threshold must be from 0 to {machine.capacity}")
            before = {"low_stock_threshold": machine.low_stock_threshold}
            machine.low_stock_threshold = threshold
            if machine.stock > self.threshold(machine):
                machine.low_stock_alerted = False
            audit.record(
                s,
                by,
                "threshold_changed",
                f"machine:{machine.id}",
                before,
                {"low_stock_threshold": threshold, "in_force": self.threshold(machine)},
                at=now,
            )
        return machine

    async def check_low_stock(self) -> list[dict[str, Any]]:
        """Raise an alert for every machine that fell to its threshold; returns them."""
        now = self.ctx.clock.now()
        raised: list[dict[str, Any]] = []
        async with self.ctx.db.begin() as s:
            machines = (
                await s.scalars(
                    select(Machine)
                    .where(
                        Machine.low_stock_alerted.is_(False),
                        Machine.removed_at.is_(None),
                        Machine.stock <= self.threshold_sql(),
                    )
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

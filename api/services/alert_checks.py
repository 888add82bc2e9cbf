"""Finding what an operator must hear about: low stock, silent machines, failed vends
and refunds the gateway would not make.

Every check raises an alert once: low stock and offline through the machine's
flags (cleared by a restock and by the machine's return), failed vends and
refunds by looking for an alert that already names the command or refund.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.lifecycle.states import SHORT, RefundStatus, ordered
from api.money import money
from api.services import webhooks_out
from api.services.alerts import Alerts
from api.services.context import Context
from api.services.slots import Slots
from schema.models import Alert, Command, Machine, Order, Refund

FAILED_VEND_STATES = ordered(SHORT)
LOOKBACK_S = 2 * 86400  # failures older than this are history, not news


async def _already_named(s: AsyncSession, kind: str, since: int, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    messages = (
        await s.scalars(select(Alert.message).where(Alert.kind == kind, Alert.created_at >= since))
    ).all()
    return {i for i in ids if any(i in m for m in messages)}


class AlertChecks:
    def __init__(self, ctx: Context, offline_after_s: int) -> None:
        self.ctx = ctx
        self.offline_after_s = offline_after_s

    async def run(self) -> int:
        """Run every check; returns how many alerts were raised."""
        raised = len(await Alerts(self.ctx).check_low_stock())
        raised += await self.offline()
        raised += await self.failed_vends()
        raised += await self.failed_refunds()
        raised += await Slots(self.ctx).check_alerts()
        return raised

    async def offline(self) -> int:
        """Machines offline for longer than the allowance, once per absence."""
        now = self.ctx.clock.now()
        cutoff = now - self.offline_after_s
        async with self.ctx.db.begin() as s:
            machines = (
                await s.scalars(
                    select(Machine)
                    .where(
                        Machine.online.is_(False),
                        Machine.offline_alerted.is_(False),
                        Machine.removed_at.is_(None),
                        Machine.last_seen.is_not(None),
                        Machine.last_seen < cutoff,
                    )
                    .with_for_update()
                )
            ).all()
            for machine in machines:
                machine.offline_alerted = True
                minutes = (now - (machine.last_seen or now)) // 60
                s.add(
                    Alert(
                        kind="offline",
                        machine_id=machine.id,
                        created_at=now,
                        message=f"{machine.name} ({machine.id}) has been offline for "
                        f"{minutes} minutes (last seen {machine.last_seen}).",
                    )
                )
            await webhooks_out.alerts_raised(s, now)
            return len(machines)

    async def failed_vends(self) -> int:
        now = self.ctx.clock.now()
        since = now - LOOKBACK_S
        async with self.ctx.db.begin() as s:
            rows = (
                await s.execute(
                    select(Command, Machine.name)
                    .join(Machine, Machine.id == Command.machine_id)
                    .where(Command.status.in_(FAILED_VEND_STATES), Command.finished_at >= since)
                    .order_by(Command.finished_at)
                    .with_for_update(of=Command)
                )
            ).all()
            named = await _already_named(s, "failed_vend", since, [c.id for c, _ in rows])
            fresh = [(c, name) for c, name in rows if c.id not in named]
            for command, name in fresh:
                why = f" ({command.error})" if command.error else ""
                s.add(
                    Alert(
                        kind="failed_vend",
                        machine_id=command.machine_id,
                        order_id=command.order_id,
                        created_at=now,
                        message=f"A vend on {name} ({command.machine_id}) ended {command.status}"
                        f"{why}: {command.dispensed} of {command.quantity} dispensed, "
                        f"order {command.order_id}, command {command.id}.",
                    )
                )
            await webhooks_out.alerts_raised(s, now)
            return len(fresh)

    async def failed_refunds(self) -> int:
        now = self.ctx.clock.now()
        since = now - LOOKBACK_S
        async with self.ctx.db.begin() as s:
            rows = (
                await s.execute(
                    select(Refund, Order.machine_id)
                    .join(Order, Order.id == Refund.order_id)
                    .where(Refund.status == RefundStatus.FAILED, Refund.updated_at >= since)
                    .order_by(Refund.updated_at)
                    .with_for_update(of=Refund)
                )
            ).all()
            named = await _already_named(s, "refund_failed", since, [r.id for r, _ in rows])
            fresh = [(r, mid) for r, mid in rows if r.id not in named]
            for refund, machine_id in fresh:
                s.add(
                    Alert(
                        kind="refund_failed",
                        machine_id=machine_id,
                        order_id=refund.order_id,
                        created_at=now,
                        message=f"Refund {refund.id} of {money(refund.amount)} for order "
                        f"{refund.order_id} failed after {refund.attempts} attempts: "
                        f"{refund.last_error or 'refused by the gateway'}. "
                        "Refund the shopper by hand from the gateway's dashboard.",
                    )
                )
            await webhooks_out.alerts_raised(s, now)
            return len(fresh)

"""One dispense command per paid order, and what the machine says about it.

Results may arrive twice, late or out of order: a final status is final, a
progress report never moves a command backwards, and silence past the
command's deadline counts as ``unknown``.  Whatever did not come out is
refunded at the order's unit price.
"""

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import CommandNotFound
from api.ids import new_id
from api.lifecycle import decide
from api.lifecycle.decide import Report
from api.lifecycle.states import (
    COMMAND_FINAL,
    CommandStatus,
    OrderStatus,
    PaymentDisposition,
    SessionStatus,
    ordered,
)
from api.lifecycle.table import Event, step
from api.services import outgoing, vend_lines
from api.services.context import Context
from api.services.locks import end_session
from api.services.refunds import open_refund
from schema.models import Command, Machine, Order, Payment, VendSession

log = logging.getLogger(__name__)
UNFINISHED = Command.status.not_in(ordered(COMMAND_FINAL))


async def dispatch(
    s: AsyncSession, ctx: Context, order: Order, session: VendSession, now: int
) -> Command:
    """Issue the order's one command (the caller holds the order's row lock)."""
    existing = await s.scalar(select(Command).where(Command.order_id == order.id))
    if existing is not None:
        return existing
    expires_at = now + ctx.policy.command_ttl_s
    command = Command(
        id=new_id("cmd"),
        order_id=order.id,
        machine_id=order.machine_id,
        quantity=order.quantity,
        status=step(CommandStatus, None, Event.CREATE),
        dispensed=0,
        issued_at=now,
        expires_at=expires_at,
        deadline=ctx.policy.command_deadline(expires_at, order.quantity),
    )
    s.add(command)
    # The lock lasts until the vend ends, however long the machine takes.
    session.expires_at = max(session.expires_at, command.deadline)
    await s.flush()
    await outgoing.send_command(s, command, now)
    machine = await s.get(Machine, order.machine_id, with_for_update=True)
    assert machine is not None
    await outgoing.machine_changed(s, machine, now)
    return command


async def finish(
    s: AsyncSession,
    ctx: Context,
    command: Command,
    status: CommandStatus,
    dispensed: int,
    now: int,
    error: str | None = None,
    lines: Sequence[dict[str, Any]] | None = None,
) -> None:
    """Close a command: stock, sale, refund of the rest, clear it, end the lock."""
    command.status = status
    command.dispensed = dispensed
    command.finished_at = now
    command.error = error[:512] if error else command.error
    order = await s.get(Order, command.order_id, with_for_update=True)
    machine = await s.get(Machine, command.machine_id, with_for_update=True)
    assert order is not None and machine is not None
    done = decide.settle(status, order.quantity, dispensed, order.unit_amount)
    order.dispensed = dispensed
    order.updated_at = now
    _take_stock(machine, dispensed)
    settled = await vend_lines.settle(s, order, machine, dispensed, lines)
    if settled is not None:  # per line: each line's count at its own unit price
        done = replace(done, sale_amount=settled.sale_amount, refund_amount=settled.refund_amount)
    if dispensed > 0:
        await outgoing.sale(
            s,
            machine.id,
            order.id,
            dispensed,
            done.sale_amount,
            order.currency,
            now,
            lines=None if settled is None else settled.sales,
        )
    if done.order_event is Event.REFUND_OPENED:
        payment = await s.scalar(
            select(Payment).where(
                Payment.order_id == order.id, Payment.disposition == PaymentDisposition.COUNTED
            )
        )
        assert payment is not None, "a dispatched order always has its payment"
        await open_refund(s, order, payment, done.refund_amount, done.reason, now)
    else:
        order.status = step(OrderStatus, order.status, done.order_event)
    await outgoing.clear_command(s, command, now)
    session = await s.get(VendSession, order.session_id, with_for_update=True)
    if session is not None and session.status == SessionStatus.ACTIVE:
        await end_session(s, ctx, session, Event.VEND_FINISHED, now)
    else:
        await outgoing.machine_changed(s, machine, now)


def _take_stock(machine: Machine, dispensed: int) -> None:
    if dispensed > machine.stock:
        # The machine held more than we were told: book the difference as a
        # correction so stock == restocked - dispensed still adds up.
        log.warning(
            "machine %s dispensed %d with %d in stock", machine.id, dispensed, machine.stock
        )
        machine.restocked_total += dispensed - machine.stock
        machine.stock = dispensed
    machine.stock -= dispensed
    machine.dispensed_total += dispensed


class Dispense:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def apply_result(
        self,
        machine_id: str,
        cmd_id: str,
        status: str,
        dispensed: int,
        error: str | None = None,
        lines: Sequence[dict[str, Any]] | None = None,
    ) -> bool:
        """Apply a device's report; False when it changed nothing (unknown, duplicate, late)."""
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            command = await s.get(Command, cmd_id, with_for_update=True)
            if command is None or command.machine_id != machine_id:
                return False
            report = decide.read_report(
                command.status, command.dispensed, command.quantity, status, dispensed
            )
            if report.kind == "progress":
                await self._progress(s, command, report, now)
            elif report.kind == "finish":
                assert report.status is not None
                await finish(
                    s, self.ctx, command, report.status, report.dispensed, now, error, lines
                )
            return report.changes

    async def _progress(self, s: AsyncSession, command: Command, report: Report, now: int) -> None:
        if report.status is not None:
            command.status = report.status
            command.accepted_at = command.accepted_at or now
        command.dispensed = report.dispensed
        order = await s.get(Order, command.order_id, with_for_update=True)
        assert order is not None
        order.status = decide.progress_order(order.status, report)
        order.dispensed = report.dispensed
        order.updated_at = now

    async def confirm(self, machine_id: str, cmd_id: str, dispensed: int) -> bool:
        """The HTTP fallback's final word: all units out is success, fewer is failure."""
        async with self.ctx.db.begin() as s:
            command = await s.get(Command, cmd_id)
            if command is None or command.machine_id != machine_id:
                raise CommandNotFound("no such command on this machine")
            quantity = command.quantity
        status = decide.confirmed_status(dispensed, quantity)
        return await self.apply_result(machine_id, cmd_id, status, dispensed)

    async def time_out(self, now: int) -> int:
        """Commands past their deadline with no final word end ``unknown``."""
        async with self.ctx.db.begin() as s:
            overdue = (
                await s.scalars(
                    select(Command).where(UNFINISHED, Command.deadline <= now).with_for_update()
                )
            ).all()
            for command in overdue:
                await finish(
                    s,
                    self.ctx,
                    command,
                    step(CommandStatus, command.status, Event.SILENT),
                    command.dispensed,
                    now,
                    "no final result before the deadline",
                )
        return len(overdue)

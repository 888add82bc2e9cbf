"""An order's lines: written at order time, settled per slot when the vend ends.

:func:`settle` is the one place where units that came out leave their slots'
stock and each line records its count; the command's final status calls it
once. Money per line: a sale of what came out, a refund of
sum of (quantity - dispensed) * unit amount.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.services import cart, planogram
from api.services.cart import Cart
from schema.models import Machine, Order, OrderLine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinesOutcome:
    sale_amount: int
    refund_amount: int
    sales: list[dict[str, Any]]  # the ``sales`` message's lines (dispensed ones)


def write(s: AsyncSession, order_id: str, basket: Cart) -> None:
    for position, line in enumerate(basket.lines):
        s.add(
            OrderLine(
                order_id=order_id,
                position=position,
                slot=line.slot,
                motor=line.motor,
                product_id=line.product_id,
                product_name=line.product_name,
                unit_amount=line.unit_amount,
                quantity=line.quantity,
                dispensed=0,
            )
        )


async def of_order(s: AsyncSession, order_id: str) -> list[OrderLine]:
    return list(
        (
            await s.scalars(
                select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.position)
            )
        ).all()
    )


async def order_with_lines(s: AsyncSession, order_id: str) -> tuple[Order | None, list[OrderLine]]:
    """An order and its lines in one query (the shopper's page reads it on every change)."""
    found = (
        await s.execute(
            select(Order, OrderLine)
            .outerjoin(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.id == order_id)
            .order_by(OrderLine.position)
        )
    ).all()
    if not found:
        return None, []
    return found[0][0], [line for _order, line in found if line is not None]


async def of_orders(s: AsyncSession, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]:
    found: dict[str, list[OrderLine]] = {order_id: [] for order_id in order_ids}
    if order_ids:
        for line in await s.scalars(
            select(OrderLine)
            .where(OrderLine.order_id.in_(list(order_ids)))
            .order_by(OrderLine.order_id, OrderLine.position)
        ):
            found[line.order_id].append(line)
    return found


def as_json(lines: Sequence[OrderLine]) -> list[dict[str, Any]]:
    """An order's lines as shoppers and operators read them (CONTRACT 5)."""
    return [
        {
            "slot": line.slot,
            "product": {"id": line.product_id, "name": line.product_name},
            "quantity": line.quantity,
            "dispensed": line.dispensed,
            "unit_amount": line.unit_amount,
        }
        for line in lines
    ]


def command_lines(lines: Sequence[OrderLine]) -> list[dict[str, Any]]:
    """The dispense command's lines: which slot, which motor, how many."""
    return [{"slot": line.slot, "motor": line.motor, "quantity": line.quantity} for line in lines]


def reported_counts(reported: Sequence[dict[str, Any]] | None) -> dict[str, int] | None:
    if reported is None:
        return None
    return {str(line["slot"]): int(line["dispensed"]) for line in reported}


async def settle(
    s: AsyncSession,
    order: Order,
    machine: Machine,
    dispensed: int,
    reported: Sequence[dict[str, Any]] | None = None,
) -> LinesOutcome | None:
    """Record each line's count, take it from its slot, keep the v1 mirror in step.

    ``reported`` is the result's per-line counts when the machine sent them; they
    are used when they add up to ``dispensed``, else the total is filled in line
    order. None when the order has no lines (nothing to settle per slot).
    """
    lines = await of_order(s, order.id)
    if not lines:
        return None
    pairs = [(line.slot, line.quantity) for line in lines]
    counts = cart.line_counts(pairs, dispensed, reported_counts(reported))
    if sum(counts) != min(dispensed, order.quantity):
        log.warning("order %s: per-line counts %s do not add up to %d", order.id, counts, dispensed)
        counts = cart.line_counts(pairs, dispensed, None)
    found = await planogram.rows(s, machine.id, lock=True)
    slots = {slot.slot_id: slot for slot, _product in found}
    for line, out in zip(lines, counts, strict=True):
        line.dispensed = out
        slot = slots.get(line.slot)
        if slot is not None and out:
            if out > slot.stock:
                log.warning("slot %s/%s dispensed %d of %d", machine.id, line.slot, out, slot.stock)
            slot.stock = max(0, slot.stock - out)
    # The mirror books what _take_stock did not see (a slot that held fewer than fell).
    planogram.mirror(machine, found)
    triples = [
        (line.quantity, out, line.unit_amount) for line, out in zip(lines, counts, strict=True)
    ]
    return LinesOutcome(
        sale_amount=sum(out * unit for _q, out, unit in triples),
        refund_amount=cart.undispensed_amount(triples),
        sales=[
            {
                "slot": line.slot,
                "product": line.product_id,
                "quantity": out,
                "unit_amount": line.unit_amount,
                "amount": out * line.unit_amount,
            }
            for line, out in zip(lines, counts, strict=True)
            if out
        ],
    )

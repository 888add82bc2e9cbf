"""An order's lines: written at order time, settled per slot when the vend ends.

:func:`settle` is the one place where units that came out leave their slots'
stock and each line records its count; the command's final status calls it
once. Money per line: a sale of what came out, a refund of
sum of (quantity - dispensed) * unit amount.
"""

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.lifecycle.snapshot import ONLY_SLOT
from schema.models import Order, OrderLine

log = logging.getLogger(__name__)


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


def command_lines(lines: Sequence[OrderLine]) -> list[dict[str, Any]] | None:
    """The dispense command's lines: which slot, which motor, how many. None for an order
    of a machine registered the v1 way (one line on slot "1", motor 0): its command stays
    the v1 one, so v1 firmware and v1 integrators see exactly what they always did."""
    if v1_order([(line.slot, line.motor) for line in lines]):
        return None
    return [{"slot": line.slot, "motor": line.motor, "quantity": line.quantity} for line in lines]


def v1_order(slots: Sequence[tuple[str, int]]) -> bool:
    """One line on the only slot of a v1 machine (slot "1", motor 0), or none at all."""
    return len(slots) == 0 or (len(slots) == 1 and slots[0] == (ONLY_SLOT, 0))

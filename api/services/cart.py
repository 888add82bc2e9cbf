"""What a shopper's items cost and whether the machine can vend them. Pure.

``items`` are ``{"slot","quantity"}``; the v1 form (``quantity`` alone) is one
item on the only slot. Each line keeps the product's name and the unit price
of the moment, so a later price change never touches this order.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.errors import InvalidItems, ItemsRequired, SlotOutOfStock, SlotUnavailable
from api.lifecycle.snapshot import Line
from api.services.planogram import Row, price_of


@dataclass(frozen=True)
class CartLine:
    slot: str
    motor: int
    product_id: str
    product_name: str
    unit_amount: int
    quantity: int

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


@dataclass(frozen=True)
class Cart:
    lines: tuple[CartLine, ...]

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def amount(self) -> int:
        return sum(line.amount for line in self.lines)


def items_of(
    items: Sequence[dict[str, Any]] | None, quantity: int | None, slots: Sequence[Row]
) -> list[tuple[str, int]]:
    """The request's items as (slot, quantity) pairs; the v1 form on a one-slot machine."""
    if items is None:
        if quantity is None:
            raise InvalidItems("give items (slot and quantity each)")
        if len(slots) != 1:
            raise ItemsRequired("this machine has several products: say which (items)")
        return [(slots[0][0].slot_id, quantity)]
    if quantity is not None:
        raise InvalidItems("give items or quantity, not both")
    return [(str(item["slot"]), int(item["quantity"])) for item in items]


def price(wanted: Sequence[tuple[str, int]], slots: Sequence[Row], max_quantity: int) -> Cart:
    """Check and price the items against the machine's slots."""
    if not wanted:
        raise InvalidItems("the order has no items")
    seen: set[str] = set()
    for slot_id, quantity in wanted:
        if slot_id in seen:
            raise InvalidItems(f"slot {slot_id} appears twice; give one quantity per slot")
        seen.add(slot_id)
        if quantity < 1:
            raise InvalidItems("each item's quantity must be at least 1")
    units = sum(quantity for _slot, quantity in wanted)
    if units > max_quantity:
        raise InvalidItems(f"at most {max_quantity} items in one order")
    by_id = {slot.slot_id: (slot, product) for slot, product in slots}
    lines = []
    for slot_id, quantity in wanted:
        found = by_id.get(slot_id)
        if found is None:
            raise InvalidItems(f"this machine has no slot {slot_id}")
        slot, product = found
        if not slot.enabled or not product.active:
            raise SlotUnavailable(f"{slot_id} is not on sale right now", slot=slot_id)
        if quantity > slot.stock:
            where = "this machine" if len(slots) == 1 else f"{slot_id} ({product.name})"
            raise SlotOutOfStock(f"only {slot.stock} left in {where}", slot=slot_id)
        lines.append(
            CartLine(
                slot=slot_id,
                motor=slot.motor,
                product_id=product.id,
                product_name=product.name,
                unit_amount=price_of(slot, product),
                quantity=quantity,
            )
        )
    return Cart(tuple(lines))


def lines_of(basket: Cart) -> tuple[Line, ...]:
    """The basket as the order's lines, as the lifecycle speaks of them."""
    return tuple(
        Line(
            line.slot,
            line.product_id,
            line.quantity,
            0,
            line.unit_amount,
            line.product_name,
            line.motor,
        )
        for line in basket.lines
    )

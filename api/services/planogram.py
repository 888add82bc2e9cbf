"""A machine's slots as the rest of the server reads them: rows, prices, snapshots.

A slot's price is its own or its product's default. ``machines.price_amount``,
``capacity`` and ``stock`` stay the v1 mirror: a one-slot machine's slot, or
with several slots the lowest enabled price and the totals (:func:`mirror`).
``machines.desired_slots`` is what ``desired`` carries; it is refreshed only
while no vend session is open (:func:`refresh_desired`), so a planogram change
made during a session reaches the machine when the session ends.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.infra.prepared import Prepared
from schema.models import Machine, MachineSlot, Product, table

Row = tuple[MachineSlot, Product]


def shown_name(text: str) -> str:
    """A name as a machine's display can show it: no control characters and nothing past
    the Basic Multilingual Plane (emoji), which the wire contract refuses in ``desired``."""
    kept = "".join(c for c in text if 32 <= ord(c) != 127 and ord(c) <= 0xFFFF).strip()
    return kept or "Item"


def printable_name(text: str) -> bool:
    """A product name shoppers' machines can show as typed."""
    return shown_name(text) == text.strip() and bool(text.strip())


def price_of(slot: MachineSlot, product: Product) -> int:
    return product.price_amount if slot.price_amount is None else slot.price_amount


def image_url(product: Product) -> str | None:
    return product_image(product.id, product.image_tag)


def product_image(product_id: str, image_tag: str | None) -> str | None:
    return None if image_tag is None else f"/api/products/{product_id}/image?v={image_tag}"


async def rows(s: AsyncSession, machine_id: str, *, lock: bool = False) -> list[Row]:
    """The machine's slots with their products, in display order."""
    query = (
        select(MachineSlot, Product)
        .join(Product, Product.id == MachineSlot.product_id)
        .where(MachineSlot.machine_id == machine_id)
        .order_by(MachineSlot.position, MachineSlot.slot_id)
    )
    if lock:
        query = query.with_for_update(of=MachineSlot)
    return [(slot, product) for slot, product in (await s.execute(query)).all()]


def slot_row(slot: MachineSlot, product: Product) -> dict[str, Any]:
    """A slot and its product as a row of :data:`_DESIRED` (what :func:`desired_slots`
    reads)."""
    return {
        "slot_id": slot.slot_id,
        "motor": slot.motor,
        "price_amount": slot.price_amount,
        "stock": slot.stock,
        "enabled": slot.enabled,
        "product_id": product.id,
        "product_name": product.name,
        "product_price": product.price_amount,
        "image_tag": product.image_tag,
    }


def desired_slots(found: Sequence[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    """The snapshot kept in ``machines.desired_slots``: ``desired``'s slots (CONTRACT 5:
    what the machine shows and which motor turns) plus each slot's ``product`` as
    shoppers see it, which the outbox leaves out of ``desired`` and ``state``. ``found``
    are :data:`_DESIRED`'s rows."""
    return [
        {
            "id": row["slot_id"],
            "motor": row["motor"],
            "name": shown_name(row["product_name"]),
            "price": {
                "amount": row["product_price"]
                if row["price_amount"] is None
                else row["price_amount"],
                "currency": currency,
            },
            "stock": row["stock"],
            "enabled": row["enabled"],
            "product": {
                "id": row["product_id"],
                "name": row["product_name"],
                "image_url": product_image(row["product_id"], row["image_tag"]),
            },
        }
        for row in found
    ]


def shown_from_snapshot(snapshot: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shoppers' slots from the snapshot (the lock path reads no other row for them)."""
    return [
        {
            "id": slot["id"],
            "product": slot["product"],
            "price": slot["price"],
            "stock": slot["stock"],
            "enabled": slot["enabled"],
        }
        for slot in snapshot
    ]


async def shown(s: AsyncSession, machine: Machine) -> list[dict[str, Any]]:
    """What shoppers see of the machine's slots: the snapshot while it is current (no
    session is open, so every change has reached it), else the rows."""
    snapshot = machine.desired_slots
    if snapshot and all("product" in slot for slot in snapshot):
        return shown_from_snapshot(snapshot)
    return public_slots(await rows(s, machine.id), machine.currency)


def sellable_shown(slots: Sequence[dict[str, Any]]) -> int:
    return sum(int(slot["stock"]) for slot in slots if slot["enabled"])


def public_slots(found: Sequence[Row], currency: str) -> list[dict[str, Any]]:
    """What shoppers see of each slot (never the motor)."""
    return [
        {
            "id": slot.slot_id,
            "product": {
                "id": product.id,
                "name": product.name,
                "image_url": image_url(product),
            },
            "price": {"amount": price_of(slot, product), "currency": currency},
            "stock": slot.stock,
            "enabled": slot.enabled,
        }
        for slot, product in found
    ]


def sellable(found: Sequence[Row]) -> int:
    """Units a shopper can buy now: the stock of enabled slots."""
    return sum(slot.stock for slot, _product in found if slot.enabled)


def mirror(machine: Machine, found: Sequence[Row]) -> None:
    """Keep the v1 columns in step with the slots. A change of the total stock that
    did not come from a vend is booked as restocked, so stock = restocked - dispensed."""
    if not found:
        return
    total = sum(slot.stock for slot, _product in found)
    machine.restocked_total += total - machine.stock
    machine.capacity = sum(slot.capacity for slot, _product in found)
    machine.stock = total
    enabled = [price_of(slot, product) for slot, product in found if slot.enabled]
    machine.price_amount = min(enabled or [price_of(slot, product) for slot, product in found])


async def refresh_desired(s: AsyncSession, machine: Machine) -> None:
    """Take the current slots into what ``desired`` shows (no session is open)."""
    await s.flush()  # slot changes of this transaction are read
    found = await desired_now(s, machine.id, machine.currency)
    if found is not None:
        machine.desired_slots = found


SLOTS, PRODUCTS = table(MachineSlot), table(Product)
_DESIRED = Prepared(
    select(
        SLOTS.c.slot_id,
        SLOTS.c.motor,
        SLOTS.c.price_amount,
        SLOTS.c.stock,
        SLOTS.c.enabled,
        PRODUCTS.c.id.label("product_id"),
        PRODUCTS.c.name.label("product_name"),
        PRODUCTS.c.price_amount.label("product_price"),
        PRODUCTS.c.image_tag,
    )
    .join_from(SLOTS, PRODUCTS, PRODUCTS.c.id == SLOTS.c.product_id)
    .where(SLOTS.c.machine_id == bindparam("mid"))
    .order_by(SLOTS.c.position, SLOTS.c.slot_id)
)


async def desired_now(
    s: AsyncSession, machine_id: str, currency: str
) -> list[dict[str, Any]] | None:
    """What ``desired_slots`` would hold now (:func:`desired_slots`), read with one prepared
    statement; None for a machine without slots."""
    found = await _DESIRED.all(s, {"mid": machine_id})
    return desired_slots(found, currency) if found else None

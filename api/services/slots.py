"""Operators' work on slots: the planogram editor, copying it, restocking, pick lists,
sales per product and slot, per-slot alerts and taps on sold-out slots.

A planogram is written whole, against the version it was read at (a stale one
is refused, ``planogram_changed``). The shopper's slot id and the motor are
two columns the editor shows side by side: mixing them up is the usual
planogram mistake, so both must be unique per machine.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import InvalidRequest, MachineNotFound, PlanogramChanged, VendInProgress
from api.lifecycle.states import COMMAND_FINAL, ordered
from api.services import outgoing, planogram
from api.services.alerts import Alerts
from api.services.context import Context
from api.services.machines import check_price
from schema.models import Alert, Command, Machine, MachineSlot, Order, OrderLine, Product

SLOT_ID = re.compile(r"[A-Z0-9]{1,4}")
MAX_SLOTS = 60
MAX_MOTOR = 255
MAX_CAPACITY = 1000
FILLS = ("par", "capacity")


@dataclass(frozen=True)
class SlotPlan:
    """One row of the editor's grid."""

    slot_id: str
    motor: int
    product_id: str
    capacity: int
    par: int
    enabled: bool = True
    price_amount: int | None = None  # None: the product's price
    stock: int | None = None  # None: keep what the slot holds


def check_plan(plans: Sequence[SlotPlan]) -> None:
    if not 1 <= len(plans) <= MAX_SLOTS:
        raise InvalidRequest(f"a machine has 1 to {MAX_SLOTS} slots")
    ids = [p.slot_id for p in plans]
    motors = [p.motor for p in plans]
    for plan in plans:
        if not SLOT_ID.fullmatch(plan.slot_id):
            raise InvalidRequest(f"slot id {plan.slot_id!r}: 1 to 4 of A-Z and 0-9")
        if not 0 <= plan.motor <= MAX_MOTOR:
            raise InvalidRequest(f"slot {plan.slot_id}: motor must be 0 to {MAX_MOTOR}")
        if not 1 <= plan.capacity <= MAX_CAPACITY:
            raise InvalidRequest(f"slot {plan.slot_id}: capacity must be 1 to {MAX_CAPACITY}")
        if not 0 <= plan.par <= plan.capacity:
            raise InvalidRequest(f"slot {plan.slot_id}: par must be 0 to its capacity")
        if plan.stock is not None and not 0 <= plan.stock <= plan.capacity:
            raise InvalidRequest(f"slot {plan.slot_id}: stock must be 0 to its capacity")
        if plan.price_amount is not None:
            check_price(plan.price_amount)
    if len(set(ids)) != len(ids):
        raise InvalidRequest("each slot id once per machine")
    if len(set(motors)) != len(motors):
        raise InvalidRequest("each motor once per machine: two slots cannot share a motor")


def slot_json(slot: MachineSlot, product: Product, currency: str) -> dict[str, Any]:
    return {
        "id": slot.slot_id,
        "motor": slot.motor,
        "product": {
            "id": product.id,
            "name": product.name,
            "image_url": planogram.image_url(product),
        },
        "price": {"amount": planogram.price_of(slot, product), "currency": currency},
        "price_override": slot.price_amount,  # paise, or None: the product's price
        "capacity": slot.capacity,
        "par": slot.par,
        "stock": slot.stock,
        "enabled": slot.enabled,
        "sold_out_taps": slot.sold_out_taps,
    }


async def _in_flight(s: AsyncSession, machine_id: str) -> bool:
    found = await s.scalar(
        select(Command.id).where(
            Command.machine_id == machine_id, Command.status.not_in(ordered(COMMAND_FINAL))
        )
    )
    return found is not None


class Slots:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def get(self, machine_id: str) -> dict[str, Any]:
        async with self.ctx.db() as s:
            machine = await _machine(s, machine_id)
            return _planogram(machine, await planogram.rows(s, machine.id))

    async def put(self, machine_id: str, version: int, plans: Sequence[SlotPlan]) -> dict[str, Any]:
        """Replace the machine's planogram as a whole (the editor's save)."""
        check_plan(plans)
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await _machine(s, machine_id, lock=True)
            if machine.planogram_version != version:
                raise PlanogramChanged(
                    "someone changed this planogram since you opened it; reload it"
                )
            await self._write(s, machine, plans)
            await outgoing.machine_changed(s, machine, now)
            return _planogram(machine, await planogram.rows(s, machine.id))

    async def copy(self, machine_id: str, targets: Sequence[str]) -> list[str]:
        """The source's planogram (products, prices, capacities, par, motors) on other
        machines; their stock stays where a slot keeps its product."""
        now = self.ctx.clock.now()
        done: list[str] = []
        async with self.ctx.db.begin() as s:
            source = await _machine(s, machine_id)
            found = await planogram.rows(s, source.id)
            plans = [
                SlotPlan(
                    slot_id=slot.slot_id,
                    motor=slot.motor,
                    product_id=slot.product_id,
                    capacity=slot.capacity,
                    par=slot.par,
                    enabled=slot.enabled,
                    price_amount=slot.price_amount,
                )
                for slot, _product in found
            ]
            for target in sorted(set(targets) - {source.id}):
                machine = await _machine(s, target, lock=True)
                await self._write(s, machine, plans)
                await outgoing.machine_changed(s, machine, now)
                done.append(machine.id)
        return done

    async def _write(self, s: AsyncSession, machine: Machine, plans: Sequence[SlotPlan]) -> None:
        products = {
            p.id: p
            for p in (
                await s.scalars(
                    select(Product).where(Product.id.in_({plan.product_id for plan in plans}))
                )
            ).all()
        }
        for plan in plans:
            if plan.product_id not in products:
                raise InvalidRequest(f"slot {plan.slot_id}: no product {plan.product_id}")
        if any(plan.stock is not None for plan in plans) and await _in_flight(s, machine.id):
            raise VendInProgress("a vend is running on this machine; set stock after it ends")
        old = {slot.slot_id: slot for slot, _p in await planogram.rows(s, machine.id, lock=True)}
        await s.execute(
            delete(MachineSlot).where(MachineSlot.machine_id == machine.id),
            execution_options={"synchronize_session": False},
        )
        for slot in old.values():
            s.expunge(slot)
        await s.flush()
        for position, plan in enumerate(plans):
            before = old.get(plan.slot_id)
            kept = before is not None and before.product_id == plan.product_id
            stock = plan.stock
            if stock is None:
                # A new product waits for the driver: its slot starts empty.
                stock = min(before.stock, plan.capacity) if kept and before else 0
            s.add(
                MachineSlot(
                    machine_id=machine.id,
                    slot_id=plan.slot_id,
                    motor=plan.motor,
                    product_id=plan.product_id,
                    price_amount=plan.price_amount,
                    capacity=plan.capacity,
                    par=plan.par,
                    stock=stock,
                    enabled=plan.enabled,
                    position=position,
                    sold_out_taps=before.sold_out_taps if before and kept else 0,
                    low_stock_alerted=bool(before and kept and before.low_stock_alerted),
                    sold_out_alerted=bool(before and kept and before.sold_out_alerted),
                )
            )
        await s.flush()
        machine.planogram_version += 1
        planogram.mirror(machine, await planogram.rows(s, machine.id))

    async def restock(
        self,
        machine_id: str,
        counts: Sequence[tuple[str, int]] | None = None,
        fill: str | None = None,
    ) -> dict[str, Any]:
        """Stock per slot as counted by the driver, or every slot filled to par or capacity."""
        if (counts is None) == (fill is None):
            raise InvalidRequest("give slots (id and stock each) or fill (par or capacity)")
        if fill is not None and fill not in FILLS:
            raise InvalidRequest("fill must be par or capacity")
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await _machine(s, machine_id, lock=True)
            if await _in_flight(s, machine.id):
                raise VendInProgress("a vend is running on this machine; restock after it ends")
            found = await planogram.rows(s, machine.id, lock=True)
            by_id = {slot.slot_id: slot for slot, _product in found}
            if counts is not None:
                for slot_id, stock in counts:
                    slot = by_id.get(slot_id)
                    if slot is None:
                        raise InvalidRequest(f"this machine has no slot {slot_id}")
                    if not 0 <= stock <= slot.capacity:
                        raise InvalidRequest(f"slot {slot_id}: stock must be 0 to {slot.capacity}")
                    slot.stock = stock
            else:
                for slot in by_id.values():
                    slot.stock = max(slot.stock, slot.par if fill == "par" else slot.capacity)
            limit = Alerts(self.ctx).threshold(machine)
            for slot in by_id.values():
                if slot.stock > limit:
                    slot.low_stock_alerted = False
                if slot.stock > 0:
                    slot.sold_out_alerted = False
            planogram.mirror(machine, found)
            if machine.stock > limit:
                machine.low_stock_alerted = False
            await outgoing.machine_changed(s, machine, now)
            return _planogram(machine, found)

    async def tap_sold_out(self, machine_id: str, slot_id: str) -> bool:
        """A shopper tapped a sold-out slot: lost demand. True when it was counted."""
        async with self.ctx.db.begin() as s:
            slot = await s.scalar(
                select(MachineSlot)
                .where(MachineSlot.machine_id == machine_id, MachineSlot.slot_id == slot_id)
                .with_for_update()
            )
            if slot is None:
                raise InvalidRequest(f"no slot {slot_id} on this machine")
            if slot.stock > 0 and slot.enabled:
                return False
            slot.sold_out_taps += 1
            return True

    async def picklist(
        self, machine_ids: Sequence[str] = (), location: str | None = None
    ) -> dict[str, Any]:
        """Units per product to bring: the sum of (par - stock) over the chosen machines
        (named ones, one location's, or the whole fleet)."""
        async with self.ctx.db() as s:
            query = select(Machine).order_by(Machine.id)
            if machine_ids:
                query = query.where(Machine.id.in_(list(machine_ids)))
            if location is not None:
                query = query.where(Machine.location == location)
            machines = (await s.scalars(query)).all()
            missing = set(machine_ids) - {m.id for m in machines}
            if missing:
                raise MachineNotFound(f"no machine {sorted(missing)[0]}")
            need: dict[str, dict[str, Any]] = {}
            for machine in machines:
                for slot, product in await planogram.rows(s, machine.id):
                    units = max(0, slot.par - slot.stock)
                    if units == 0 or not slot.enabled:
                        continue
                    entry = need.setdefault(
                        product.id,
                        {
                            "product": {"id": product.id, "name": product.name, "sku": product.sku},
                            "units": 0,
                            "machines": {},
                        },
                    )
                    entry["units"] += units
                    entry["machines"][machine.id] = entry["machines"].get(machine.id, 0) + units
        products = sorted(need.values(), key=lambda e: (e["product"]["name"], e["product"]["id"]))
        return {
            "machines": [m.id for m in machines],
            "location": location,
            "products": products,
            "total": sum(e["units"] for e in products),
        }

    async def sales(self, since: int, until: int, machine_id: str | None = None) -> dict[str, Any]:
        """Units and takings per product and per slot over [since, until)."""
        async with self.ctx.db() as s:
            query = (
                select(
                    Order.machine_id,
                    OrderLine.slot,
                    OrderLine.product_id,
                    OrderLine.product_name,
                    func.sum(OrderLine.dispensed),
                    func.sum(OrderLine.dispensed * OrderLine.unit_amount),
                )
                .join(Order, Order.id == OrderLine.order_id)
                .where(Order.created_at >= since, Order.created_at < until, OrderLine.dispensed > 0)
                .group_by(
                    Order.machine_id, OrderLine.slot, OrderLine.product_id, OrderLine.product_name
                )
            )
            if machine_id is not None:
                query = query.where(Order.machine_id == machine_id)
            rows = (await s.execute(query)).all()
        by_product: dict[str, dict[str, Any]] = {}
        by_slot = []
        for mid, slot, product_id, name, units, amount in rows:
            entry = by_product.setdefault(
                product_id, {"product": {"id": product_id, "name": name}, "units": 0, "amount": 0}
            )
            entry["units"] += int(units)
            entry["amount"] += int(amount)
            by_slot.append(
                {
                    "machine_id": mid,
                    "slot": slot,
                    "product": {"id": product_id, "name": name},
                    "units": int(units),
                    "amount": int(amount),
                }
            )
        return {
            "since": since,
            "until": until,
            "currency": "INR",
            "by_product": sorted(
                by_product.values(), key=lambda e: (-e["amount"], e["product"]["id"])
            ),
            "by_slot": sorted(by_slot, key=lambda e: (e["machine_id"], e["slot"])),
        }

    async def check_alerts(self) -> int:
        """Per slot, once until restocked: low stock, and sold out (an enabled slot at 0).

        Only machines with several enabled slots (a one-slot machine's low stock is the
        machine's alert); the database finds the slots due, so the check's cost follows
        the alerts to raise, not the fleet."""
        now = self.ctx.clock.now()
        raised = 0
        alerts = Alerts(self.ctx)
        several = (
            select(MachineSlot.machine_id)
            .where(MachineSlot.enabled.is_(True))
            .group_by(MachineSlot.machine_id)
            .having(func.count() >= 2)
        )
        due = or_(
            and_(MachineSlot.stock == 0, MachineSlot.sold_out_alerted.is_(False)),
            and_(
                MachineSlot.stock > 0,
                MachineSlot.low_stock_alerted.is_(False),
                MachineSlot.stock <= alerts.threshold_sql(),
            ),
        )
        async with self.ctx.db.begin() as s:
            rows = (
                await s.execute(
                    select(MachineSlot, Product.name, Machine)
                    .join(Product, Product.id == MachineSlot.product_id)
                    .join(Machine, Machine.id == MachineSlot.machine_id)
                    .where(MachineSlot.enabled.is_(True), MachineSlot.machine_id.in_(several), due)
                    .order_by(MachineSlot.machine_id, MachineSlot.position)
                    .with_for_update(of=MachineSlot)
                )
            ).all()
            for slot, name, machine in rows:
                where = f"{machine.name} ({machine.id}) slot {slot.slot_id} {name}"
                if slot.stock == 0 and not slot.sold_out_alerted:
                    slot.sold_out_alerted = slot.low_stock_alerted = True
                    s.add(_alert("sold_out", machine.id, now, f"{where} is sold out."))
                    raised += 1
                elif 0 < slot.stock <= alerts.threshold(machine) and not slot.low_stock_alerted:
                    slot.low_stock_alerted = True
                    s.add(_alert("low_stock", machine.id, now, f"{where}: {slot.stock} left."))
                    raised += 1
        return raised


def _alert(kind: str, machine_id: str, now: int, message: str) -> Alert:
    return Alert(kind=kind, machine_id=machine_id, created_at=now, message=message)


def _planogram(machine: Machine, found: Sequence[planogram.Row]) -> dict[str, Any]:
    return {
        "machine_id": machine.id,
        "version": machine.planogram_version,
        "slots": [slot_json(slot, product, machine.currency) for slot, product in found],
    }


async def _machine(s: AsyncSession, machine_id: str, *, lock: bool = False) -> Machine:
    machine = await s.get(Machine, machine_id, with_for_update=lock)
    if machine is None:
        raise MachineNotFound(f"no machine {machine_id}")
    return machine

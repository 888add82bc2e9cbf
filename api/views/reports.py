"""Sales reports: a window of local days, grouped by machine, location or product.

Sales are the units that came out at the price each order line was sold at, on the
local day (or hour) the vend ended; what operators refunded by hand is taken off on
the day the refund was made (as the fleet's "today" counts it). A manual refund
belongs to a machine, not to a product: grouped by product, it is counted only in
the totals. Ratings are the shoppers' thumbs on orders, on the day they gave them.

A user limited to locations (``scope``) sees only machines at those locations.
Decommissioned machines stay in reports.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.clock import LocalCalendar
from api.lifecycle.states import MANUAL_REFUND, RefundStatus
from api.services.context import Context
from api.views.reports_window import HOUR_S, Group, Window
from schema.models import Command, Feedback, Machine, Order, OrderLine, Product, Refund

NO_LOCATION = "(no location)"
SLOT_SEPARATOR = "/"  # a slot's key: machine id, "/", slot id
LINE_BATCH = 500


@dataclass
class Figures:
    units: int = 0
    amount: int = 0  # paise, gross: units at their prices
    refunded: int = 0  # paise operators refunded by hand
    up: int = 0
    down: int = 0

    @property
    def net(self) -> int:
        return self.amount - self.refunded

    def as_json(self) -> dict[str, int]:
        return {
            "units": self.units,
            "amount": self.amount,
            "refunded": self.refunded,
            "net": self.net,
            "thumbs_up": self.up,
            "thumbs_down": self.down,
        }


@dataclass
class Row:
    key: str
    name: str
    location: str | None = None  # grouped by machine: where it stands
    figures: Figures = field(default_factory=Figures)


@dataclass
class Report:
    window: Window
    group: Group
    rows: list[Row]  # best selling first
    totals: Figures
    per_bucket: dict[int, Figures]  # whole selection, per bar
    stacked: dict[tuple[str, int], int]  # (row key, bar) -> gross paise, for the chart
    currency: str = "INR"


@dataclass(frozen=True)
class SaleLine:
    """One order line whose vend ended in the window: a CSV row."""

    finished_at: int
    order_id: str
    machine_id: str
    machine_name: str
    location: str | None
    slot: str
    product_id: str
    product_name: str
    quantity: int
    dispensed: int
    unit_amount: int
    currency: str
    rating: str | None
    order_refunded: int | None  # on the order's first line only, so a column adds up
    refund_reasons: tuple[str, ...]  # codes; "manual" comes with the operator's note
    refund_notes: tuple[str, ...]


Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def _scoped(query: Q, scope: Sequence[str] | None) -> Q:
    if scope is None:
        return query
    return query.where(func.coalesce(Machine.location, "").in_(list(scope)))


def _named(names: dict[str, Row], key: str) -> Row:
    """A new row for ``key``, named: a machine, a location, a product, or a machine's slot."""
    found = names.get(key)
    if found is not None:
        return Row(key, found.name, found.location)
    machine, sep, slot = key.partition(SLOT_SEPARATOR)
    if sep and machine in names:
        where = names[machine]
        return Row(key, f"{where.name} · slot {slot}", where.location)
    return Row(key, key)


class Reports:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _bucket(self, column: Any, window: Window) -> Any:
        if window.hourly:  # hours from the local midnight (whole-hour offsets keep them aligned)
            return ((column - window.since) // HOUR_S) * HOUR_S + window.since
        return self.ctx.calendar.bucket(column, window.since, window.until)

    @staticmethod
    def _key(group: Group) -> Any:
        if group is Group.MACHINE:
            return Machine.id
        if group is Group.LOCATION:
            return func.coalesce(Machine.location, "")
        if group is Group.SLOT:
            return Machine.id + SLOT_SEPARATOR + OrderLine.slot
        return OrderLine.product_id

    async def summary(
        self, window: Window, group: Group, scope: Sequence[str] | None = None
    ) -> Report:
        key = self._key(group)
        bar = self._bucket(Command.finished_at, window)
        sold = _scoped(
            select(
                key,
                bar,
                func.sum(OrderLine.dispensed),
                func.sum(OrderLine.dispensed * OrderLine.unit_amount),
            )
            .select_from(Command)
            .join(OrderLine, OrderLine.order_id == Command.order_id)
            .join(Machine, Machine.id == Command.machine_id)
            .where(
                Command.finished_at >= window.since,
                Command.finished_at < window.until,
                OrderLine.dispensed > 0,
            )
            .group_by(key, bar),
            scope,
        )
        by_line = group in (Group.PRODUCT, Group.SLOT)  # a refund is an order's, not a line's
        refund_key = key if not by_line else literal("")
        refund_bar = self._bucket(Refund.created_at, window)
        refunded = _scoped(
            select(refund_key, refund_bar, func.sum(Refund.amount))
            .select_from(Refund)
            .join(Order, Order.id == Refund.order_id)
            .join(Machine, Machine.id == Order.machine_id)
            .where(
                Refund.reason == MANUAL_REFUND,
                Refund.status != RefundStatus.FAILED,
                Refund.created_at >= window.since,
                Refund.created_at < window.until,
            )
            .group_by(*([key] if not by_line else []), refund_bar),
            scope,
        )
        rated = select(
            key,
            func.sum(case((Feedback.rating == "up", 1), else_=0)),
            func.sum(case((Feedback.rating == "down", 1), else_=0)),
        ).select_from(Feedback)
        if by_line:
            rated = rated.join(OrderLine, OrderLine.order_id == Feedback.order_id)
        rated = _scoped(
            rated.join(Machine, Machine.id == Feedback.machine_id)
            .where(Feedback.created_at >= window.since, Feedback.created_at < window.until)
            .group_by(key),
            scope,
        )
        rows: dict[str, Row] = {}
        totals = Figures()
        per_bucket = {b: Figures() for b in window.buckets}
        stacked: dict[tuple[str, int], int] = {}
        async with self.ctx.db() as s:
            names, in_service = await self._names(s, group, scope)
            for k, b, units, amount in (await s.execute(sold)).all():
                row = rows.setdefault(str(k), _named(names, str(k)))
                units, amount = int(units or 0), int(amount or 0)
                row.figures.units += units
                row.figures.amount += amount
                totals.units += units
                totals.amount += amount
                bucket = per_bucket.setdefault(int(b), Figures())
                bucket.units += units
                bucket.amount += amount
                stacked[(row.key, int(b))] = stacked.get((row.key, int(b)), 0) + amount
            for k, b, amount in (await s.execute(refunded)).all():
                amount = int(amount or 0)
                totals.refunded += amount
                per_bucket.setdefault(int(b), Figures()).refunded += amount
                if not by_line:
                    row = rows.setdefault(str(k), _named(names, str(k)))
                    row.figures.refunded += amount
            for k, up, down in (await s.execute(rated)).all():
                row = rows.setdefault(str(k), _named(names, str(k)))
                row.figures.up += int(up or 0)
                row.figures.down += int(down or 0)
            ratings = await self._ratings(s, window, scope)
        for key in in_service:  # who sold nothing is news too
            rows.setdefault(key, _named(names, key))
        # Totals and bars count each order's rating once, however many products it had.
        totals.up = totals.down = 0
        for b, (up, down) in ratings.items():
            bucket = per_bucket.setdefault(b, Figures())
            bucket.up, bucket.down = up, down
            totals.up += up
            totals.down += down
        ordered = sorted(
            rows.values(), key=lambda r: (-r.figures.net, -r.figures.units, r.name.lower(), r.key)
        )
        return Report(window, group, ordered, totals, per_bucket, stacked)

    async def _ratings(
        self, s: AsyncSession, window: Window, scope: Sequence[str] | None
    ) -> dict[int, tuple[int, int]]:
        bar = self._bucket(Feedback.created_at, window)
        query = _scoped(
            select(
                bar,
                func.sum(case((Feedback.rating == "up", 1), else_=0)),
                func.sum(case((Feedback.rating == "down", 1), else_=0)),
            )
            .select_from(Feedback)
            .join(Machine, Machine.id == Feedback.machine_id)
            .where(Feedback.created_at >= window.since, Feedback.created_at < window.until)
            .group_by(bar),
            scope,
        )
        rows = (await s.execute(query)).all()
        return {int(b): (int(up or 0), int(down or 0)) for b, up, down in rows}

    @staticmethod
    async def _names(
        s: AsyncSession, group: Group, scope: Sequence[str] | None
    ) -> tuple[dict[str, Row], set[str]]:
        """Every row the report may show, named; and by machine or location, the keys of
        the machines in service now (listed even when they sold nothing)."""
        if group is Group.PRODUCT:
            found = await s.execute(select(Product.id, Product.name))
            return {pid: Row(pid, name) for pid, name in found.all()}, set()
        query = select(Machine.id, Machine.name, Machine.location, Machine.removed_at)
        machines = (await s.execute(_scoped(query, scope))).all()
        if group in (Group.MACHINE, Group.SLOT):  # a slot's row is named after its machine
            named = {mid: Row(mid, name, location) for mid, name, location, _ in machines}
            listed = {mid for mid, _, _, gone in machines if gone is None}
            return named, (listed if group is Group.MACHINE else set())
        named = {(loc or ""): Row(loc or "", loc or NO_LOCATION) for _, _, loc, _ in machines}
        return named, {loc or "" for _, _, loc, gone in machines if gone is None}

    async def lines(
        self, window: Window, scope: Sequence[str] | None = None, batch: int = LINE_BATCH
    ) -> AsyncIterator[SaleLine]:
        """Every line of the orders whose vend ended in the window, oldest first."""
        query = _scoped(
            select(
                Command.finished_at,
                Order.id,
                Order.machine_id,
                Machine.name,
                Machine.location,
                OrderLine,
                Order.currency,
                Feedback.rating,
            )
            .select_from(Command)
            .join(Order, Order.id == Command.order_id)
            .join(OrderLine, OrderLine.order_id == Order.id)
            .join(Machine, Machine.id == Order.machine_id)
            .outerjoin(Feedback, Feedback.order_id == Order.id)
            .where(Command.finished_at >= window.since, Command.finished_at < window.until)
            .order_by(Command.finished_at, Order.id, OrderLine.position),
            scope,
        )
        offset = 0
        previous = ""
        while True:
            async with self.ctx.db() as s:
                found = (await s.execute(query.limit(batch).offset(offset))).all()
                order_ids = list({row[1] for row in found})
                refunds = (
                    await s.scalars(select(Refund).where(Refund.order_id.in_(order_ids)))
                ).all()
            by_order: dict[str, list[Refund]] = {}
            for refund in sorted(refunds, key=lambda r: (r.created_at, r.id)):
                by_order.setdefault(refund.order_id, []).append(refund)
            for finished, oid, mid, name, location, line, currency, rating in found:
                mine = by_order.get(oid, [])
                live = [r for r in mine if r.status != RefundStatus.FAILED]
                first, previous = oid != previous, oid
                yield SaleLine(
                    finished_at=int(finished or 0),
                    order_id=oid,
                    machine_id=mid,
                    machine_name=name,
                    location=location,
                    slot=line.slot,
                    product_id=line.product_id,
                    product_name=line.product_name,
                    quantity=line.quantity,
                    dispensed=line.dispensed,
                    unit_amount=line.unit_amount,
                    currency=currency,
                    rating=rating,
                    order_refunded=sum(r.amount for r in live) if first and mine else None,
                    refund_reasons=tuple(dict.fromkeys(r.reason for r in live)),
                    refund_notes=tuple(r.note for r in live if r.note),
                )
            if len(found) < batch:
                return
            offset += batch


def as_json(report: Report, calendar: LocalCalendar) -> dict[str, Any]:
    """The report for ``GET /api/reports``: local dates, Unix seconds, paise."""
    w = report.window
    return {
        "period": w.period.value,
        "from": w.first.isoformat(),
        "to": w.last.isoformat(),
        "since": w.since,
        "until": w.until,
        "timezone": calendar.name,
        "group": report.group.value,
        "currency": report.currency,
        "totals": report.totals.as_json(),
        "rows": [
            {
                "key": r.key,
                "name": r.name,
                **({"location": r.location} if report.group in (Group.MACHINE, Group.SLOT) else {}),
                **r.figures.as_json(),
            }
            for r in report.rows
        ],
        "bars": [
            {
                "start": b,
                "local": calendar.iso(b),
                "units": report.per_bucket[b].units,
                "amount": report.per_bucket[b].amount,
                "refunded": report.per_bucket[b].refunded,
                "thumbs_up": report.per_bucket[b].up,
                "thumbs_down": report.per_bucket[b].down,
            }
            for b in w.buckets
        ],
    }

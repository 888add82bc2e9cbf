"""Orders as the operator sees them: filtered lists, CSV rows and one order's timeline."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import aliased

from api.errors import InvalidRequest, OrderNotFound
from api.lifecycle import decide, vend
from api.lifecycle.states import (
    MANUAL_REFUND,
    CommandStatus,
    OrderStatus,
    PaymentDisposition,
    RefundStatus,
)
from api.money import money
from api.services import refund_totals, vend_lines, vend_load
from api.services.context import Context
from schema import topics
from schema.models import (
    Command,
    Feedback,
    Machine,
    Order,
    OrderLine,
    Payment,
    Refund,
    VendSession,
)

MAX_PAGE = 200
STATUSES = tuple(OrderStatus)  # for filter forms
RowsQuery = Select[
    Order, str, int | None, int | None, int | None, str | None, str | None, str | None
]
MACHINE_SEARCH_MAX = 40

# Why money went back, as operators read it (the stored reasons are the lifecycle's codes).
REFUND_REASONS = {
    MANUAL_REFUND: "refunded by an operator",
    "dispense_failed": "not all units came out",
    "dispense_rejected": "the machine refused the vend",
    "dispense_expired": "the machine did not start in time",
    "dispense_unknown": "the machine lost track (restarted mid-vend)",
    "duplicate_payment": "paid twice",
    "wrong_amount": "paid the wrong amount",
    "late_payment": "paid after the reservation ended",
    "insufficient_stock": "sold out before payment",
}


VERIFIED_VIA = {
    "verify": "confirmed by the shopper's browser",
    "webhook": "confirmed by the gateway",
}
LOCK_ENDINGS = {
    "vend_finished": "the vend finished",
    "unlocked": "the shopper let go",
    "expired": "the reservation ran out",
}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def refund_reason_text(codes: str | None) -> str:
    """``vend_failed,manual`` -> "not all units came out; refunded by an operator"."""
    if not codes:
        return ""
    seen = list(dict.fromkeys(c for c in codes.split(",") if c))
    return "; ".join(REFUND_REASONS.get(c, c.replace("_", " ")) for c in seen)


@dataclass(frozen=True)
class OrderFilter:
    machine_id: str | None = None
    machine_text: str | None = None  # what an operator typed: a machine's id or part of its name
    status: str | None = None
    start: int | None = None  # created_at >= start
    end: int | None = None  # created_at < end
    locations: tuple[str, ...] | None = None  # a user's scope: machines at these locations

    def validate(self) -> None:
        if self.machine_id is not None and not topics.is_machine_id(self.machine_id):
            raise InvalidRequest("machine must match [A-Za-z0-9_-]{1,32}")
        if self.machine_text is not None and len(self.machine_text) > MACHINE_SEARCH_MAX:
            raise InvalidRequest(f"machine: at most {MACHINE_SEARCH_MAX} characters")
        if self.status is not None and self.status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InvalidRequest("the end date must come after the start date")

    def apply(self, query: RowsQuery) -> RowsQuery:
        self.validate()
        if self.machine_id is not None:
            query = query.where(Order.machine_id == self.machine_id)
        if self.machine_text:
            pattern = "%" + _escape_like(self.machine_text.lower()) + "%"
            query = query.where(
                (Order.machine_id == self.machine_text)
                | func.lower(Machine.name).like(pattern, escape="\\")
            )
        if self.locations is not None:
            query = query.where(Machine.location.in_(self.locations))
        if self.status is not None:
            query = query.where(Order.status == self.status)
        if self.start is not None:
            query = query.where(Order.created_at >= self.start)
        if self.end is not None:
            query = query.where(Order.created_at < self.end)
        return query


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    machine_id: str
    machine_name: str
    created_at: int
    paid_at: int | None
    status: str
    quantity: int
    dispensed: int
    amount: int
    currency: str
    gateway: str
    gateway_order_id: str | None
    refund_amount: int | None
    refund_status: str | None
    unit_amount: int = 0
    rating: str | None = None
    refund_reasons: str = ""  # in words, for people and spreadsheets

    @property
    def partly_refunded(self) -> bool:
        """Money went back for some of what was paid, not all of it."""
        return bool(self.refund_amount) and (self.refund_amount or 0) < self.amount


@dataclass(frozen=True)
class Step:
    ts: int
    title: str
    detail: str = ""
    tone: str = "info"  # info, good, bad


@dataclass
class OrderDetail:
    order: Order
    session: VendSession | None
    payments: list[Payment]
    command: Command | None
    refunds: list[Refund]
    timeline: list[Step] = field(default_factory=list)
    lines: list[OrderLine] = field(default_factory=list)  # one per slot, in order

    @property
    def counted_payment(self) -> Payment | None:
        counted = PaymentDisposition.COUNTED
        return next((p for p in self.payments if p.disposition == counted), None)

    @property
    def undispensed_amount(self) -> int:
        """What did not come out, each line at its own unit price."""
        return vend.undispensed(vend_load.lines_of(self.order, self.lines))

    @property
    def payment_refunds(self) -> list[Refund]:
        payment = self.counted_payment
        return [r for r in self.refunds if payment is not None and r.payment_id == payment.id]

    @property
    def refunded(self) -> int:
        """Paise of the payment refunded or on their way back, automatic and manual."""
        return refund_totals.refunded(self.payment_refunds)

    @property
    def refund_room(self) -> int:
        """What an operator may still refund: what was paid less what was refunded."""
        payment = self.counted_payment
        return 0 if payment is None else decide.refund_room(payment.amount, self.refunded)

    @property
    def vend_over(self) -> bool:
        return decide.vend_over(None if self.command is None else self.command.status)

    @property
    def refundable(self) -> bool:
        """True when an admin may refund more: paid, vend over, not all of it refunded yet."""
        return self.refund_room > 0 and self.vend_over


def _rows_query() -> RowsQuery:
    counted = aliased(Payment)
    live = case((Refund.status != RefundStatus.FAILED, Refund.amount), else_=0)
    pending = case((Refund.status == RefundStatus.PENDING, 1), else_=0)
    refunds = (
        select(
            Refund.payment_id.label("payment_id"),
            func.sum(live).label("amount"),
            func.sum(pending).label("pending"),
            func.sum(Refund.amount).label("asked"),
            func.aggregate_strings(Refund.reason, ",").label("reasons"),
            func.aggregate_strings(Refund.note, "; ").label("notes"),
        )
        .group_by(Refund.payment_id)
        .subquery()
    )
    return (
        select(
            Order,
            Machine.name,
            refunds.c.amount,
            refunds.c.pending,
            refunds.c.asked,
            refunds.c.reasons,
            Feedback.rating,
            refunds.c.notes,
        )
        .join(Machine, Machine.id == Order.machine_id)
        .outerjoin(Feedback, Feedback.order_id == Order.id)
        .outerjoin(
            counted,
            and_(
                counted.order_id == Order.id,
                counted.disposition == PaymentDisposition.COUNTED,
            ),
        )
        .outerjoin(refunds, refunds.c.payment_id == counted.id)
        .order_by(Order.created_at.desc(), Order.id.desc())
    )


def _row(
    order: Order,
    machine_name: str,
    refunded: int | None,
    pending: int | None,
    asked: int | None,
    reasons: str | None = None,
    rating: str | None = None,
    notes: str | None = None,  # what operators wrote for their refunds
) -> OrderRow:
    if asked is None:
        refund_amount, refund_status = None, None
    elif pending:
        refund_amount, refund_status = int(refunded or 0), RefundStatus.PENDING
    elif refunded:
        refund_amount, refund_status = int(refunded), RefundStatus.PROCESSED
    else:
        refund_amount, refund_status = int(asked), RefundStatus.FAILED
    return OrderRow(
        order_id=order.id,
        machine_id=order.machine_id,
        machine_name=machine_name,
        created_at=order.created_at,
        paid_at=order.paid_at,
        status=order.status,
        quantity=order.quantity,
        dispensed=order.dispensed,
        amount=order.amount,
        currency=order.currency,
        gateway=order.gateway,
        gateway_order_id=order.gateway_order_id,
        refund_amount=refund_amount,
        refund_status=refund_status,
        unit_amount=order.unit_amount,
        rating=rating,
        refund_reasons=refund_reason_text(reasons) + (f": {notes}" if notes else ""),
    )


class OrderViews:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def page(self, where: OrderFilter, *, limit: int = 50, offset: int = 0) -> list[OrderRow]:
        limit = max(1, min(limit, MAX_PAGE))
        async with self.ctx.db() as s:
            result = await s.execute(where.apply(_rows_query()).limit(limit).offset(max(0, offset)))
            return [_row(*r) for r in result.all()]

    async def export(self, where: OrderFilter, batch: int = 500) -> AsyncIterator[OrderRow]:
        """Every matching order, newest first, read in batches."""
        offset = 0
        while True:
            rows = await self.page(where, limit=min(batch, MAX_PAGE), offset=offset)
            for row in rows:
                yield row
            if len(rows) < min(batch, MAX_PAGE):
                return
            offset += len(rows)

    async def detail(self, order_id: str) -> OrderDetail:
        async with self.ctx.db() as s:
            order = await s.get(Order, order_id)
            if order is None:
                raise OrderNotFound(f"no order {order_id}")
            detail = OrderDetail(
                order=order,
                session=await s.get(VendSession, order.session_id),
                payments=list(
                    (
                        await s.scalars(
                            select(Payment)
                            .where(Payment.order_id == order.id)
                            .order_by(Payment.created_at)
                        )
                    ).all()
                ),
                command=await s.scalar(select(Command).where(Command.order_id == order.id)),
                refunds=list(
                    (
                        await s.scalars(
                            select(Refund)
                            .where(Refund.order_id == order.id)
                            .order_by(Refund.created_at)
                        )
                    ).all()
                ),
                lines=await vend_lines.of_order(s, order.id),
            )
        detail.timeline = timeline(detail)
        return detail


def timeline(d: OrderDetail) -> list[Step]:
    """What happened to an order, oldest first."""
    o = d.order
    steps: list[Step] = []
    if d.session is not None:
        steps.append(
            Step(
                d.session.created_at,
                "Machine locked",
                f"session {d.session.id} by shopper {d.session.client_id}",
            )
        )
    steps.append(
        Step(
            o.created_at,
            "Order created",
            (
                ", ".join(
                    f"{line.slot} {line.product_name} {line.quantity} x "
                    f"{money(line.unit_amount, o.currency)}"
                    for line in d.lines
                )
                if len(d.lines) > 1
                else f"{o.quantity} x {money(o.unit_amount, o.currency)}"
            )
            + f" = {money(o.amount, o.currency)} via {o.gateway}"
            + (f", gateway order {o.gateway_order_id}" if o.gateway_order_id else ""),
        )
    )
    for p in d.payments:
        counted = p.disposition == PaymentDisposition.COUNTED
        steps.append(
            Step(
                p.created_at,
                "Payment verified" if counted else "Extra payment",
                f"{p.gateway_payment_id}: {money(p.amount, p.currency)}, "
                + VERIFIED_VIA.get(p.verified_via, f"confirmed via {p.verified_via}"),
                "good" if counted else "bad",
            )
        )
    c = d.command
    if c is not None:
        steps.append(
            Step(
                c.issued_at,
                "Dispense command sent",
                f"{c.id}: {c.quantity} unit(s), to start within {c.expires_at - c.issued_at} s",
            )
        )
        if c.accepted_at is not None:
            steps.append(Step(c.accepted_at, "Machine accepted the command"))
        if c.finished_at is not None:
            ok = c.status == CommandStatus.SUCCEEDED
            steps.append(
                Step(
                    c.finished_at,
                    f"Vend {c.status}",
                    f"{c.dispensed} of {c.quantity} dispensed"
                    + (f"; {c.error}" if c.error else ""),
                    "good" if ok else "bad",
                )
            )
    for r in d.refunds:
        steps.append(
            Step(
                r.created_at,
                "Manual refund opened" if r.reason == MANUAL_REFUND else "Refund opened",
                f"{r.id}: {money(r.amount, o.currency)}, {refund_reason_text(r.reason)}",
            )
        )
        if r.status != RefundStatus.PENDING or r.last_error:
            tone = {RefundStatus.PROCESSED: "good", RefundStatus.FAILED: "bad"}.get(
                RefundStatus(r.status), "info"
            )
            steps.append(
                Step(
                    r.updated_at,
                    f"Refund {r.status}",
                    f"{r.attempts} attempt(s)"
                    + (f"; last error: {r.last_error}" if r.last_error else ""),
                    tone,
                )
            )
    if d.session is not None and d.session.ended_at is not None:
        steps.append(
            Step(
                d.session.ended_at,
                "Lock released",
                LOCK_ENDINGS.get(d.session.end_reason or d.session.status, "ended"),
            )
        )
    return sorted(steps, key=lambda st: st.ts)

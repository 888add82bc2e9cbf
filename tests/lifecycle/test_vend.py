"""One decision per vend event: a snapshot in, one outcome out (pure, property-tested)."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from api.lifecycle import vend
from api.lifecycle.snapshot import (
    CommandSnap,
    Incoming,
    Line,
    MachineSnap,
    OrderSnap,
    PaymentSnap,
    RefundSnap,
    SessionSnap,
    Vend,
)
from api.lifecycle.states import (
    COMMAND_FINAL,
    CommandStatus,
    OrderStatus,
    PaymentDisposition,
    RefundStatus,
    SessionStatus,
)
from api.lifecycle.table import Event
from api.services.policy import VendPolicy

units = st.integers(min_value=0, max_value=12)
prices = st.integers(min_value=1, max_value=100_000)
reports = st.sampled_from([*CommandStatus, "bogus"])
RANK = {CommandStatus.PENDING: 0, CommandStatus.ACCEPTED: 1, CommandStatus.RUNNING: 2}
NOW = 1_700_000_000
lines_of = st.lists(
    st.tuples(st.integers(min_value=1, max_value=5), prices), min_size=1, max_size=4
).map(lambda found: tuple(Line(f"A{i}", f"p{i}", q, 0, u) for i, (q, u) in enumerate(found)))


def a_vend(
    lines: tuple[Line, ...],
    *,
    command: str = CommandStatus.PENDING,
    counted: int = 0,
    order: str = OrderStatus.PAID,
    session: str = SessionStatus.ACTIVE,
    refunds: tuple[RefundSnap, ...] = (),
) -> Vend:
    quantity = sum(line.quantity for line in lines)
    amount = sum(line.quantity * line.unit_amount for line in lines)
    return Vend(
        machine=MachineSnap("m1", 20, lock_id="ses_1"),
        order=OrderSnap("ord_1", "m1", "ses_1", order, amount, "INR", lines),
        command=CommandSnap("cmd_1", command, quantity, counted, NOW + 60),
        session=SessionSnap("ses_1", session, NOW + 300, (("ord_1", order),)),
        payments=(PaymentSnap("pay_1", amount, PaymentDisposition.COUNTED),),
        refunds=refunds,
    )


@given(lines_of, st.sampled_from(CommandStatus), units, reports, units)
def test_a_report_never_moves_a_command_back(
    lines: tuple[Line, ...], current: CommandStatus, counted: int, reported: str, dispensed: int
) -> None:
    quantity = sum(line.quantity for line in lines)
    counted = min(counted, quantity)
    out = vend.machine_result(
        a_vend(lines, command=current, counted=counted), reported, dispensed, None
    )
    if current in COMMAND_FINAL or reported not in {*vend.RESULT}:
        assert not out.changed
        return
    if reported in COMMAND_FINAL:
        assert out.command == reported and out.command_finished
    elif out.command is not None:
        assert RANK[out.command] > RANK[current]
    if out.changed:
        assert out.command_dispensed is not None
        assert counted <= out.command_dispensed <= quantity


@given(lines_of, st.lists(st.tuples(reports, units), max_size=10))
def test_a_vend_finishes_once_and_accounts_for_every_unit(
    lines: tuple[Line, ...], stream: list[tuple[str, int]]
) -> None:
    status: str = CommandStatus.PENDING
    counted, finished, order = 0, 0, OrderStatus.PAID
    sold = refunded = 0
    for reported, dispensed in stream:
        snap = a_vend(lines, command=status, counted=counted, order=order)
        out = vend.machine_result(snap, reported, dispensed, None)
        status = out.command or status
        counted = out.command_dispensed if out.command_dispensed is not None else counted
        order = out.order or order
        if out.command_finished:
            finished += 1
            sold = out.publish.sale.amount if out.publish.sale else 0
            refunded = sum(r.amount for r in out.refunds)
            assert out.session is SessionStatus.ENDED and out.rotate_code
            assert out.publish.clear and out.publish.desired
    assert finished <= 1
    total = sum(line.quantity * line.unit_amount for line in lines)
    if finished:
        assert status in COMMAND_FINAL
        assert sold + refunded == total
        assert order in (OrderStatus.DISPENSED, OrderStatus.REFUND_PENDING)
    else:
        assert status not in COMMAND_FINAL


@given(lines_of, st.sampled_from(sorted(COMMAND_FINAL)), units)
def test_a_refund_is_what_each_line_did_not_give(
    lines: tuple[Line, ...], reported: str, dispensed: int
) -> None:
    out = vend.machine_result(a_vend(lines), reported, dispensed, None)
    after = out.lines
    assert after is not None
    due = sum((line.quantity - line.dispensed) * line.unit_amount for line in after)
    assert sum(r.amount for r in out.refunds) == due
    for refund in out.refunds:
        assert refund.amount == sum(share for _slot, share in refund.lines)
        assert refund.reason == f"dispense_{reported}"
    # The machine runs the lines in order: a line has units only when every earlier one is full.
    for earlier, later in itertools.pairwise(after):
        assert later.dispensed == 0 or earlier.dispensed == earlier.quantity
    assert out.order is (OrderStatus.REFUND_PENDING if due else OrderStatus.DISPENSED)


@given(lines_of, st.integers(min_value=0, max_value=100_000))
def test_a_refund_never_passes_what_was_paid(lines: tuple[Line, ...], already: int) -> None:
    """Σ (quantity - dispensed) x unit price, capped by what is left of the payment."""
    paid = sum(line.quantity * line.unit_amount for line in lines)
    assert vend.refund_due(lines, paid, 0) == paid
    assert vend.refund_due(lines, paid, already) == max(0, min(paid, paid - already))
    some = vend.spread(lines, 1)
    assert vend.refund_due(some, paid, 0) == paid - some[0].unit_amount


@given(lines_of)
def test_silence_ends_the_command_unknown_with_what_was_counted(lines: tuple[Line, ...]) -> None:
    snap = a_vend(lines, command=CommandStatus.RUNNING, counted=1)
    assert not vend.deadline_passed(snap, NOW).changed  # not yet
    out = vend.deadline_passed(snap, NOW + 60)
    assert out.command is CommandStatus.UNKNOWN and out.command_dispensed == 1
    assert out.command_error == vend.SILENCE
    short = sum(line.quantity for line in lines) > 1
    assert [r.reason for r in out.refunds] == (["dispense_unknown"] if short else [])


@given(lines_of)
def test_progress_starts_a_paid_order_dispensing(lines: tuple[Line, ...]) -> None:
    out = vend.machine_result(a_vend(lines), "accepted", 0, None)
    assert out.order is OrderStatus.DISPENSING and out.command is CommandStatus.ACCEPTED
    again = a_vend(lines, command=CommandStatus.ACCEPTED, order=OrderStatus.DISPENSING)
    assert not vend.machine_result(again, "accepted", 0, None).changed


def test_a_payment_in_time_dispatches_and_a_late_one_is_refunded() -> None:
    lines = (Line("1", "", 2, 0, 2500),)
    snap = a_vend(lines, order=OrderStatus.CREATED)
    paid = Incoming("pay_x", 5000, "INR", "verify")
    out = vend.payment_verified(snap, paid, VendPolicy(), NOW)
    assert out.order is OrderStatus.PAID and out.dispatch is not None
    assert out.publish.command and out.publish.desired and not out.refunds
    assert out.session_expires_at == max(NOW + 300, out.dispatch.deadline)
    late = vend.payment_verified(snap, paid, VendPolicy(), NOW + 301)
    assert late.order is OrderStatus.REFUND_PENDING and late.dispatch is None
    assert [(r.payment_id, r.amount, r.reason) for r in late.refunds] == [
        (None, 5000, "late_payment")
    ]
    wrong = vend.payment_verified(snap, Incoming("pay_y", 10, "INR", "verify"), VendPolicy(), NOW)
    assert [r.reason for r in wrong.refunds] == ["wrong_amount"]
    twice = vend.payment_verified(a_vend(lines), paid, VendPolicy(), NOW)
    assert twice.order is None and twice.payment is not None
    assert twice.payment.disposition == PaymentDisposition.EXTRA
    assert [r.reason for r in twice.refunds] == ["duplicate_payment"]


def test_a_lock_ends_unless_a_vend_is_in_flight() -> None:
    lines = (Line("1", "", 1, 0, 2500),)
    busy = a_vend(lines)
    assert vend.lock_ended(busy, Event.EXPIRED, NOW).refusal == vend.VEND_IN_FLIGHT
    forced = vend.lock_ended(busy, Event.EXPIRED, NOW, vend_keeps_it=False)
    assert forced.session is SessionStatus.EXPIRED and forced.rotate_code
    idle = a_vend(lines, order=OrderStatus.CREATED)
    out = vend.lock_ended(idle, Event.UNLOCKED, NOW)
    assert out.session is SessionStatus.ENDED and out.expire_unpaid is OrderStatus.EXPIRED
    ended = a_vend(lines, session=SessionStatus.ENDED)
    assert vend.lock_ended(ended, Event.UNLOCKED, NOW).refusal == vend.NOT_ACTIVE


def test_the_gateway_word_ends_an_automatic_refund_and_its_order() -> None:
    lines = (Line("1", "", 1, 0, 2500),)
    refund = RefundSnap("rfd_1", "pay_1", 2500, RefundStatus.PENDING, "dispense_failed")
    snap = a_vend(lines, order=OrderStatus.REFUND_PENDING, refunds=(refund,))
    out = vend.refund_word(snap, "rfd_1", "processed")
    assert out.refund == ("rfd_1", RefundStatus.PROCESSED) and out.order is OrderStatus.REFUNDED
    assert not vend.refund_word(snap, "rfd_1", "pending").changed
    manual = RefundSnap("rfd_2", "pay_1", 100, RefundStatus.PENDING, "manual")
    snap = a_vend(lines, order=OrderStatus.DISPENSED, refunds=(manual,))
    out = vend.refund_word(snap, "rfd_2", "processed")
    assert out.refund == ("rfd_2", RefundStatus.PROCESSED) and out.order is None

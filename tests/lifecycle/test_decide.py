"""The vend rules as pure decisions, property-tested (no database, milliseconds each)."""

from hypothesis import given
from hypothesis import strategies as st

from api.lifecycle import decide
from api.lifecycle.decide import ManualVerdict, PaymentVerdict
from api.lifecycle.states import (
    BUSY,
    COMMAND_FINAL,
    COUNTED,
    CommandStatus,
    OrderStatus,
    PaymentDisposition,
    RefundStatus,
    SessionStatus,
)
from api.lifecycle.table import Event, step

order_states = st.sampled_from(OrderStatus)
command_states = st.sampled_from(CommandStatus)
reports = st.sampled_from([*CommandStatus, "bogus"])
units = st.integers(min_value=0, max_value=20)
prices = st.integers(min_value=1, max_value=100_000)
times = st.integers(min_value=0, max_value=2**40)

RANK = {CommandStatus.PENDING: 0, CommandStatus.ACCEPTED: 1, CommandStatus.RUNNING: 2}


@given(order_states, st.booleans(), st.booleans())
def test_a_payment_dispenses_only_in_time_in_full_and_once(
    status: OrderStatus, right: bool, live: bool
) -> None:
    verdict = decide.payment_verdict(status, right, live)
    if verdict is PaymentVerdict.DISPATCH:
        assert status is OrderStatus.CREATED and right and live
        assert step(OrderStatus, status, Event.PAYMENT_COUNTED) is OrderStatus.PAID
        assert verdict.refund_reason is None
    else:
        assert verdict.refund_reason == verdict.value
    if status in COUNTED:
        assert verdict is PaymentVerdict.DUPLICATE
        assert verdict.disposition is PaymentDisposition.EXTRA
    else:
        assert verdict.disposition is PaymentDisposition.COUNTED
        if verdict is not PaymentVerdict.DISPATCH:  # the full refund moves the order
            assert step(OrderStatus, status, Event.REFUND_OPENED) is OrderStatus.REFUND_PENDING


def test_named_payment_cases() -> None:
    created = OrderStatus.CREATED
    assert decide.payment_verdict(created, True, True) is PaymentVerdict.DISPATCH
    assert decide.payment_verdict(created, True, False) is PaymentVerdict.LATE
    assert decide.payment_verdict(OrderStatus.EXPIRED, True, True) is PaymentVerdict.LATE
    assert decide.payment_verdict(created, False, True) is PaymentVerdict.WRONG_AMOUNT
    assert decide.payment_verdict(OrderStatus.PAID, True, True) is PaymentVerdict.DUPLICATE
    assert decide.stock_verdict(2, 3) is PaymentVerdict.NO_STOCK
    assert decide.stock_verdict(3, 3) is PaymentVerdict.DISPATCH


@given(st.sampled_from(SessionStatus), times, times)
def test_a_lock_is_live_while_active_and_before_it_runs_out(
    status: SessionStatus, expires_at: int, now: int
) -> None:
    live = decide.session_live(status, expires_at, now)
    assert live == (status is SessionStatus.ACTIVE and now < expires_at)


@given(command_states, times, times)
def test_silence_past_the_deadline_is_unknown(
    status: CommandStatus, deadline: int, now: int
) -> None:
    assert decide.silent(status, deadline, now) == (status not in COMMAND_FINAL and deadline <= now)
    if decide.silent(status, deadline, now):
        assert step(CommandStatus, status, Event.SILENT) is CommandStatus.UNKNOWN


@given(times, st.integers(min_value=1, max_value=10), st.integers(min_value=0, max_value=60))
def test_the_deadline_gives_each_unit_its_run_time(
    expires_at: int, quantity: int, run: int
) -> None:
    assert decide.command_deadline(expires_at, quantity, run) == expires_at + run * quantity


@given(units, units)
def test_the_http_fallback_succeeds_only_with_every_unit(dispensed: int, quantity: int) -> None:
    status = decide.confirmed_status(dispensed, quantity)
    assert (status is CommandStatus.SUCCEEDED) == (dispensed >= quantity)


@given(order_states, st.sampled_from([None, *RefundStatus]))
def test_the_shopper_waits_for_a_final_order_and_refund(
    status: OrderStatus, refund: RefundStatus | None
) -> None:
    done = decide.shopper_done(status, refund)
    assert done == (
        status
        in (OrderStatus.DISPENSED, OrderStatus.REFUNDED, OrderStatus.EXPIRED, OrderStatus.FAILED)
        and refund is not RefundStatus.PENDING
    )
    assert not (done and status in BUSY)


@given(
    st.sampled_from(["manual", "dispense_failed", "late_payment"]),
    st.sampled_from(PaymentDisposition),
)
def test_only_the_automatic_refund_of_the_counted_payment_moves_the_order(
    reason: str, disposition: PaymentDisposition
) -> None:
    moves = decide.refund_moves_order(reason, disposition)
    assert moves == (reason != "manual" and disposition is PaymentDisposition.COUNTED)


def test_refund_words_and_attempts() -> None:
    assert decide.refund_event("processed") is Event.PROCESSED
    assert decide.refund_event("failed") is Event.REFUND_FAILED
    assert decide.refund_event("pending") is None
    assert decide.refund_event("queued") is None
    assert not decide.attempts_spent(decide.MAX_REFUND_ATTEMPTS - 1)
    assert decide.attempts_spent(decide.MAX_REFUND_ATTEMPTS)


@given(
    st.integers(min_value=1, max_value=10_000),
    st.lists(st.integers(min_value=-5, max_value=12_000), max_size=8),
    st.sampled_from([None, *CommandStatus]),
)
def test_manual_refunds_never_pass_what_was_paid(
    paid: int, asks: list[int], command: CommandStatus | None
) -> None:
    refunded = 0
    for amount in asks:
        verdict = decide.manual_verdict(amount, paid, refunded, command)
        if verdict is ManualVerdict.ALLOWED:
            refunded += amount
        if not decide.vend_over(command):
            assert verdict is ManualVerdict.VEND_RUNNING
    assert 0 <= refunded <= paid
    assert decide.refund_room(paid, refunded) == paid - refunded
    assert decide.manual_verdict(1, None, 0, None) is ManualVerdict.NOT_PAID
    if refunded == paid and decide.vend_over(command):
        assert decide.manual_verdict(1, paid, refunded, command) is ManualVerdict.REFUNDED_IN_FULL


@given(st.sampled_from(["in_service", "out_of_service"]), st.booleans(), units)
def test_a_machine_is_available_in_service_online_and_stocked(
    mode: str, online: bool, stock: int
) -> None:
    found = decide.availability(mode, online, stock)
    assert (found is decide.Availability.AVAILABLE) == (
        mode == "in_service" and online and stock >= 1
    )
    if mode != "in_service":
        assert found is decide.Availability.OUT_OF_SERVICE


@given(st.sampled_from([None, "123456", "654321"]), st.one_of(st.none(), times), times)
def test_a_code_counts_only_as_shown_and_in_time(
    shown: str | None, expires_at: int | None, now: int
) -> None:
    hit = decide.code_shown(shown, expires_at, "123456", now)
    assert hit == (shown == "123456" and expires_at is not None and expires_at > now)
    assert decide.code_spent(3, 3, shown) == (shown is not None)
    assert not decide.code_spent(2, 3, "123456")

"""The transition table: every state reachable, final states final, step follows the table."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.lifecycle.states import (
    COMMAND_FINAL,
    CommandStatus,
    OrderStatus,
    RefundStatus,
    SessionStatus,
)
from api.lifecycle.table import (
    KINDS,
    TRANSITIONS,
    Event,
    IllegalTransition,
    Status,
    allowed,
    step,
)


@pytest.mark.parametrize("kind", KINDS)
def test_every_state_is_reachable_from_creation(kind: type[Status]) -> None:
    moves = [t for t in TRANSITIONS if type(t.target) is kind]
    seen = {str(t.target) for t in moves if t.source is None}
    assert len(seen) == 1  # one way in
    grown = True
    while grown:
        new = {str(t.target) for t in moves if str(t.source) in seen} - seen
        seen |= new
        grown = bool(new)
    assert seen == {str(s) for s in kind}


@pytest.mark.parametrize("kind", KINDS)
def test_one_move_per_state_and_event(kind: type) -> None:
    keys = [(t.source, t.event) for t in TRANSITIONS if type(t.target) is kind]
    assert len(keys) == len(set(keys))


def test_final_words_are_final() -> None:
    for t in TRANSITIONS:
        assert t.source not in COMMAND_FINAL or not isinstance(t.source, CommandStatus)
        assert t.source not in (OrderStatus.DISPENSED, OrderStatus.REFUNDED)
        assert t.source is not RefundStatus.PROCESSED
        assert not isinstance(t.source, SessionStatus) or t.source is SessionStatus.ACTIVE


kinds = st.sampled_from(KINDS)


@given(kinds, st.sampled_from([None, *(str(s) for k in KINDS for s in k)]), st.sampled_from(Event))
def test_step_is_the_table(kind: type, source: str | None, event: Event) -> None:
    listed = [
        t.target
        for t in TRANSITIONS
        if type(t.target) is kind
        and ((t.source is None and source is None) or t.source == source)
        and t.event == event
        and (t.source is None or type(t.source) is kind)
    ]
    assert allowed(kind, source, event) == bool(listed)
    if listed:
        assert step(kind, source, event) == listed[0]
        assert type(step(kind, source, event)) is kind
    else:
        with pytest.raises(IllegalTransition):
            step(kind, source, event)

"""The lifecycle's statuses are the database's: the check constraints list the same values."""

from api.lifecycle import states
from api.lifecycle.states import CommandStatus, OrderStatus, RefundStatus, SessionStatus
from schema import models


def test_statuses_match_the_check_constraints() -> None:
    assert tuple(OrderStatus) == models.ORDER_STATES
    assert tuple(CommandStatus) == models.COMMAND_STATES
    assert tuple(RefundStatus) == models.REFUND_STATES
    assert tuple(SessionStatus) == models.SESSION_STATES
    assert states.ordered(states.COMMAND_FINAL) == tuple(sorted(models.FINAL_COMMAND_STATES))
    assert states.MANUAL_REFUND == models.MANUAL_REFUND


def test_sets_are_made_of_their_kind() -> None:
    assert states.BUSY < states.COUNTED
    assert states.BUSY.isdisjoint(states.ORDER_FINAL)
    assert states.PROGRESS.isdisjoint(states.COMMAND_FINAL)
    assert states.PROGRESS | states.COMMAND_FINAL | {CommandStatus.PENDING} == set(CommandStatus)

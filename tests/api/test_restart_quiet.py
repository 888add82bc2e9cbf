"""A normal restart logs nothing alarming: the test gateway remembers its orders in the
database, and the burst of publishes that re-sends every machine's state is no warning."""

import logging

import pytest

from api.clock import FakeClock
from api.payments.test_gateway import TestGateway
from api.payments.test_gateway_records import DatabaseRecords
from api.server.serve import quiet_backlog
from api.services.container import Services
from api.services.machines import NewMachine
from api.services.reconcile import GRACE_S, Reconciler
from schema.models import Machine


async def test_a_restarted_test_gateway_reconciles_older_orders_quietly(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, services: Services
) -> None:
    # As the server wires it: the test gateway keeps its records in the database.
    records = DatabaseRecords(services.ctx.db)
    services.orders.gateway = TestGateway("test-secret", records)
    await services.machines.register(
        NewMachine(machine_id="m1", name="Lobby", price_amount=2500, capacity=5, stock=5)
    )
    await services.machines.apply_status("m1", {"state": "online", "boot": 1})
    async with services.ctx.db.begin() as s:
        machine = await s.get(Machine, "m1")
        assert machine is not None and machine.display_code is not None
        code = machine.display_code
    lock = await services.locks.lock_by_code(code, "client-00001")
    await services.orders.create(lock.session_id, "client-00001", 1)  # never paid
    clock.advance(GRACE_S + 1)
    # The server restarts: a new test gateway, reading the same records.
    fresh = TestGateway("test-secret", records)
    restarted = Reconciler(services.ctx, services.orders, services.refunds, fresh)
    with caplog.at_level(logging.INFO):
        assert await restarted.run_once() == 0
    assert caplog.records == []
    assert await restarted.run_once() == 0  # asked again: still nothing paid, still quiet
    assert caplog.records == []


def test_the_publish_backlog_warning_is_demoted() -> None:
    def record(msg: str, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord("mqtt", level, __file__, 1, msg, (12,), None)

    backlog = record("There are %d pending publish calls.")
    assert quiet_backlog(backlog) is False  # dropped unless the mqtt logger shows debug
    assert backlog.levelno == logging.DEBUG
    assert quiet_backlog(record("Connection lost")) is True

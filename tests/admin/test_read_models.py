"""The dashboard's services and helpers over an in-memory database and a fake clock."""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.clock import FakeClock
from api.errors import (
    Conflict,
    InvalidRequest,
    PaymentRequired,
    RefundExceedsPaid,
    VendInProgress,
)
from api.infra.db import create_engine, session_factory
from api.payments.test_gateway import TestGateway
from api.server.runtime import build_services
from api.services.container import Services
from api.services.manual_refund import ManualRefunds
from api.services.policy import VendPolicy
from api.views.admin import DAY_S, AdminViews
from api.views.fleet_stats import SLOT_S, FleetStats
from api.views.orders import OrderFilter, OrderViews
from schema.models import Base, Machine, Telemetry
from tests.admin.support import register, vend
from web.admin import charts
from web.admin.device_config import HARDWARE_DEFAULTS, MOTOR_PINS, motor_pins
from web.admin.spreadsheet import cell as _cell

START = 1_800_000_000 - 1_800_000_000 % DAY_S + 10 * 3600  # 10:00 UTC


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield build_services(
        session_factory(engine), FakeClock(START), VendPolicy(), TestGateway("secret")
    )
    await engine.dispose()


def clock(services: Services) -> FakeClock:
    found = services.ctx.clock
    assert isinstance(found, FakeClock)
    return found


async def test_fleet_rows_count_todays_sales_and_busy_machines(services: Services) -> None:
    await register(services, "a", stock=8)
    await register(services, "b", stock=2, online=False)
    await vend(services, "a", 2)
    clock(services).advance(DAY_S)  # yesterday's sale no longer counts as today's
    await services.machines.apply_status("a", {"state": "online", "boot": 2})
    await vend(services, "a", 1, dispensed=0)
    await vend(services, "a", 3, client_id="client-00009")
    rows = {r.machine_id: r for r in await AdminViews(services.ctx).fleet()}
    assert (rows["a"].units_today, rows["a"].sales_today) == (3, 7500)
    assert rows["a"].stock == 3 and rows["a"].low_stock and not rows["a"].busy
    assert rows["b"].low_stock and not rows["b"].online and rows["b"].sales_today == 0
    failed = await AdminViews(services.ctx).failed_commands("a")
    assert [c.status for c in failed] == ["failed"]


async def test_order_filters_and_timeline(services: Services) -> None:
    await register(services, "a", stock=9)
    await register(services, "b", stock=9)
    first = await vend(services, "a", 1)
    clock(services).advance(DAY_S)
    await services.machines.apply_status("a", {"state": "online", "boot": 2})
    await services.machines.apply_status("b", {"state": "online", "boot": 2})
    second = await vend(services, "b", 2, dispensed=1)
    views = OrderViews(services.ctx)
    assert [r.order_id for r in await views.page(OrderFilter())] == [second, first]
    assert [r.order_id for r in await views.page(OrderFilter(machine_id="a"))] == [first]
    assert [r.order_id for r in await views.page(OrderFilter(status="refund_pending"))] == [second]
    today = START + DAY_S - (START + DAY_S) % DAY_S
    assert [r.order_id for r in await views.page(OrderFilter(start=today))] == [second]
    assert [r.order_id for r in await views.page(OrderFilter(end=today))] == [first]
    with pytest.raises(InvalidRequest):
        await views.page(OrderFilter(status="bogus"))
    with pytest.raises(InvalidRequest):
        await views.page(OrderFilter(machine_id="a b"))
    row = (await views.page(OrderFilter(machine_id="b")))[0]
    assert (row.refund_amount, row.refund_status) == (2500, "pending")
    detail = await views.detail(second)
    titles = [step.title for step in detail.timeline]
    assert titles == [
        "Machine locked",
        "Order created",
        "Payment verified",
        "Dispense command sent",
        "Vend failed",
        "Refund opened",
        "Lock released",
    ]
    # The vend's own refund covers what did not come out; the rest may be refunded by hand.
    assert (detail.refunded, detail.refund_room, detail.refundable) == (2500, 2500, True)
    assert [r.order_id async for r in views.export(OrderFilter(), batch=1)] == [second, first]


async def test_manual_refund_rules(services: Services) -> None:
    """Money, not history: the order stays dispensed and shows the total refunded so far."""
    await register(services, "a", stock=9)
    done = await vend(services, "a", 2)
    refunds = ManualRefunds(services.ctx)
    with pytest.raises(RefundExceedsPaid, match=re.escape("from ₹0.01 to ₹50.00")):
        await refunds.refund(done, 999_999)
    with pytest.raises(InvalidRequest):
        await refunds.refund(done, 0)
    refund = await refunds.refund(done, 1000, by="admin")
    assert (refund.amount, refund.reason, refund.status) == (1000, "manual", "pending")
    view = await services.orders.view(done)
    assert view["status"] == "dispensed"
    assert view["refund"] == {"amount": 1000, "status": "pending", "manual_amount": 1000}
    assert await services.refunds.process_pending() == 1
    view = await services.orders.view(done)
    assert (view["status"], view["dispensed"]) == ("dispensed", 2)
    assert view["refund"] == {"amount": 1000, "status": "processed", "manual_amount": 1000}
    detail = await OrderViews(services.ctx).detail(done)
    assert (detail.refunded, detail.refund_room, detail.refundable) == (1000, 4000, True)
    already = re.escape("₹10.00 of the ₹50.00 paid is already refunded")
    with pytest.raises(RefundExceedsPaid, match=already):
        await refunds.refund(done, 4001)
    await refunds.refund(done, 4000, by="admin")  # a further refund, up to what was paid
    assert await services.refunds.process_pending() == 1
    view = await services.orders.view(done)
    assert view["status"] == "dispensed"
    assert view["refund"] == {"amount": 5000, "status": "processed", "manual_amount": 5000}
    with pytest.raises(Conflict, match="already refunded"):
        await refunds.refund(done, 100)
    assert not (await OrderViews(services.ctx).detail(done)).refundable
    row = (await OrderViews(services.ctx).page(OrderFilter(machine_id="a")))[0]
    assert (row.refund_amount, row.refund_status, row.machine_name) == (5000, "processed", "Lobby")

    # On top of a partial vend's automatic refund, up to what was paid; the order stays refunded.
    partial = await vend(services, "a", 2, dispensed=1, client_id="client-00003")
    assert await services.refunds.process_pending() == 1
    with pytest.raises(RefundExceedsPaid, match=re.escape("to ₹25.00")):
        await refunds.refund(partial, 2501)
    await refunds.refund(partial, 500)
    assert await services.refunds.process_pending() == 1
    view = await services.orders.view(partial)
    assert (view["status"], view["dispensed"]) == ("refunded", 1)
    assert view["refund"] == {"amount": 3000, "status": "processed", "manual_amount": 500}
    # Sales today and the daily report are net of what operators refunded: 7500 - 5500.
    row_a = await AdminViews(services.ctx).machine("a")
    assert (row_a.units_today, row_a.sales_today) == (3, 2000)
    amounts, _ = await FleetStats(services.ctx).sales_per_day(1, "a")
    assert amounts.value("a", amounts.days[-1]) == 2000
    # An order whose vend is still running cannot be refunded by hand.
    assert (await AdminViews(services.ctx).machine("a")).stock == 6
    async with services.ctx.db.begin() as s:
        machine = await s.get(Machine, "a")
        assert machine is not None and machine.display_code is not None
        code = machine.display_code
    lock = await services.locks.lock_by_code(code, "client-00005")
    created = await services.orders.create(lock.session_id, "client-00005", 1)
    with pytest.raises(PaymentRequired):
        await refunds.refund(created.order_id, 100)
    gateway = services.gateway
    assert isinstance(gateway, TestGateway)
    proof = gateway.complete_payment(created.gateway_order_id)
    await services.orders.verify(*proof.values())
    with pytest.raises(VendInProgress):
        await refunds.refund(created.order_id, 100)


async def test_sales_per_day_and_uptime(services: Services) -> None:
    await register(services, "a", stock=9)
    await vend(services, "a", 2)
    stats = FleetStats(services.ctx)
    amounts, units = await stats.sales_per_day(3)
    today = services.ctx.calendar.day_start(START)  # local midnight (Asia/Kolkata)
    assert today == START - START % DAY_S - 19_800  # 18:30 UTC the day before
    assert amounts.days == [today - 2 * DAY_S, today - DAY_S, today]
    assert amounts.value("a", today) == 5000 and units.value("a", today) == 2
    assert amounts.value("a", today - DAY_S) is None
    async with services.ctx.db.begin() as s:  # telemetry in 3 of the 6 slots of the last hour
        for ts in (START, START + 60, START + 2 * SLOT_S, START + 4 * SLOT_S):
            s.add(Telemetry(machine_id="a", ts=ts, data={"rssi": -60}))
    clock(services).advance(SLOT_S * 6 - 1)
    uptime = await stats.uptime(2)
    assert uptime.value("a", today) == pytest.approx(50.0)
    assert uptime.value("a", today - DAY_S) is None  # not registered yet
    series = await AdminViews(services.ctx).telemetry("a", START)
    assert series == {
        "rssi": [
            (START, -60.0),
            (START + 60, -60.0),
            (START + 2 * SLOT_S, -60.0),
            (START + 4 * SLOT_S, -60.0),
        ]
    }


def test_charts_escape_text_and_describe_themselves() -> None:
    svg = charts.stacked_bars("<b>sales</b>", ["<1>", "2"], [("<script>", [1.0, 2.0])], str)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    assert svg.startswith('<svg class="chart" role="img"') and "<desc" in svg
    line = charts.line("rssi", [(0, -60.0), (60, -70.0)], lambda v: f"{v:g}", str)
    assert "polyline" in line and "lowest -70" in line
    assert "No data" in charts.line("empty", [], str, str)


def test_csv_cells_never_start_a_formula() -> None:
    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert _cell("-5") == "'-5" and _cell(None) == "" and _cell("ord_1") == "ord_1"


def test_firmware_config_has_the_example_fields() -> None:
    example = json.loads(
        (
            Path(__file__).resolve().parents[2] / "device" / "firmware" / "config.example.json"
        ).read_text()
    )
    for key, value in HARDWARE_DEFAULTS.items():
        assert example[key] == value, key
    assert example["motors"] == MOTOR_PINS == motor_pins(6)
    assert motor_pins(1) == MOTOR_PINS[:1] and motor_pins(8) == MOTOR_PINS


def test_chart_axes_are_round_and_todays_bar_is_always_labelled() -> None:
    assert [charts.nice_top(v) for v in (7500, 100, 18.75, 0.3, 0)] == [8000, 100, 20, 0.4, 1]
    days = [f"{d:02d} Nov" for d in range(17, 31)]  # 14 days, the last one is today
    svg = charts.bars("Sales", days, [100.0] * 13 + [7500.0], lambda v: f"₹{v / 100:.2f}")
    labels = re.findall(r'text-anchor="middle" fill="#4a5568"( font-weight="700")?>([^<]+)<', svg)
    assert labels[-1] == (' font-weight="700"', "30 Nov")  # today: labelled, in bold
    assert len(labels) <= 7
    ticks = re.findall(r'text-anchor="end"[^>]*>([^<]+)<', svg)
    assert ticks == ["₹0", "₹20", "₹40", "₹60", "₹80"]

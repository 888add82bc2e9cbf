"""The emailed sales report over real SMTP: once per period, at the local hour, however
many workers ask and after restarts; a failed send tried again later."""

import asyncio
import datetime as dt
from dataclasses import replace
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from sqlalchemy import select

from api.clock import FakeClock, LocalCalendar
from api.services.container import Services
from api.services.machines import NewMachine
from api.services.mailer import SmtpMailer
from api.services.report_mail import RETRY_AFTER_S, ReportMails
from api.settings import ConfigurationError, Settings
from schema.models import ReportMail
from tests.admin.smtp_sink import Sink, smtp_sink
from tests.admin.support import admin_client, admin_stack, vend
from tests.support.ports import free_port

IST = LocalCalendar("Asia/Kolkata")
THU = dt.date(2027, 1, 14)
OPS = "ops@example.com, owner@example.com"


def _at(day: dt.date, hour: int, minute: int = 0) -> int:
    return IST.midnight(day) + hour * 3600 + minute * 60


def _subjects(sink: Sink) -> list[str]:
    return [str(make_header(decode_header(str(m["Subject"])))) for m in sink.messages]


def _mail(port: int) -> dict[str, object]:
    """The server's settings; its own periodic report stays off (the test runs the workers)."""
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "alert_email": OPS,
        "smtp_from": "vend@example.com",
        "alert_interval_s": 0,
    }


async def _sell(services: Services, clock: FakeClock) -> None:
    await services.machines.register(
        NewMachine(
            machine_id="lobby-1",
            name="Lobby",
            location="Tower A",
            price_amount=2500,
            capacity=10,
            stock=9,
        )
    )
    await services.machines.apply_status("lobby-1", {"state": "online", "boot": 1, "fw": "1"})
    clock.value = _at(THU, 12)
    await vend(services, "lobby-1", 2)


async def test_a_daily_report_goes_out_once_at_the_hour(tmp_path: Path) -> None:
    clock = FakeClock(_at(THU, 9))
    async with smtp_sink() as sink, admin_stack(tmp_path, clock=clock, **_mail(0)) as st:
        settings = replace(st.settings, smtp_port=sink.port, report_email_period="daily")
        services = st.services
        await _sell(services, clock)

        def worker() -> ReportMails:  # each worker, and each restart, builds its own
            return ReportMails(services.ctx, SmtpMailer.from_settings(settings), settings)

        clock.value = _at(THU + dt.timedelta(days=1), 7, 59)
        assert await worker().run_once() is False  # not yet 08:00 local
        assert sink.messages == []
        clock.value = _at(THU + dt.timedelta(days=1), 8)
        sent = await asyncio.gather(*(worker().run_once() for _ in range(3)))
        assert sorted(sent) == [False, False, True]  # three workers, one email
        assert await worker().run_once() is False  # a restart sends nothing again
        clock.advance(3 * 3600)
        assert await worker().run_once() is False
        assert _subjects(sink) == ["[SmartVend] Daily sales: Thu 14 Jan 2027, ₹50.00 net"]
        message = sink.messages[0]
        assert message["To"] == OPS and message["From"] == "vend@example.com"
        text = sink.body(0)
        assert "SmartVend sales, Thu 14 Jan 2027 (local days, Asia/Kolkata)" in text
        assert "Sales ₹50.00 (2 units) · refunded by hand ₹0.00 · net ₹50.00" in text
        assert "  Lobby (lobby-1), Tower A: ₹50.00, 2" in text
        assert "/admin/reports?period=day&date=2027-01-14" in text

        clock.value = _at(THU + dt.timedelta(days=2), 8, 30)  # the next day: Friday's report
        assert await worker().run_once() is True
        assert _subjects(sink)[1] == "[SmartVend] Daily sales: Fri 15 Jan 2027, ₹0.00 net"
        assert "  No sales." in sink.body(1)
        async with services.ctx.db() as s:
            rows = (await s.scalars(select(ReportMail).order_by(ReportMail.period_start))).all()
        assert [(r.period, r.period_start, r.attempts) for r in rows] == [
            ("daily", IST.midnight(THU), 1),
            ("daily", IST.midnight(THU + dt.timedelta(days=1)), 1),
        ]
        assert all(r.sent_at is not None and r.recipients == OPS for r in rows)
        async with admin_client(st) as admin:  # the reports page says what was mailed
            page = (await admin.get("/admin/reports")).text
        assert "Last: the report for Fri 15 Jan 2027, sent 2027-01-16 08:30:00 IST." in page


async def test_a_weekly_report_after_a_failed_send_is_tried_again(tmp_path: Path) -> None:
    clock = FakeClock(_at(THU, 9))
    closed = free_port()  # nothing listens here: the first send fails
    async with admin_stack(tmp_path, clock=clock, **_mail(closed)) as stack:
        services = stack.services
        weekly = replace(stack.settings, report_email_period="weekly")
        await _sell(services, clock)
        monday = THU + dt.timedelta(days=4)
        clock.value = _at(monday, 8, 5)
        failing = ReportMails(services.ctx, SmtpMailer.from_settings(weekly), weekly)
        assert await failing.run_once() is False
        async with services.ctx.db() as s:
            row = (await s.scalars(select(ReportMail))).one()
        assert row.sent_at is None and row.last_error and str(closed) in row.last_error
        async with smtp_sink() as sink:
            settings = replace(weekly, smtp_port=sink.port)
            mails = ReportMails(services.ctx, SmtpMailer.from_settings(settings), settings)
            assert await mails.run_once() is False  # too soon after the failure
            clock.advance(RETRY_AFTER_S)
            assert await mails.run_once() is True
            assert _subjects(sink) == [
                "[SmartVend] Weekly sales: 11 Jan 2027 to 17 Jan 2027, ₹50.00 net"
            ]
            assert "/admin/reports?period=week&date=2027-01-11" in sink.body(0)
        async with services.ctx.db() as s:
            row = (await s.scalars(select(ReportMail))).one()
        assert (row.attempts, row.last_error, row.period) == (2, None, "weekly")
        assert row.period_end == IST.midnight(monday)


def test_the_period_and_hour_are_checked_at_start() -> None:
    with pytest.raises(
        ConfigurationError, match="REPORT_EMAIL_PERIOD must be off, daily or weekly"
    ):
        Settings.from_env({"SMARTVEND_REPORT_EMAIL_PERIOD": "hourly"})
    with pytest.raises(ConfigurationError, match="REPORT_EMAIL_HOUR must be an hour"):
        Settings.from_env({"SMARTVEND_REPORT_EMAIL_HOUR": "24"})
    assert Settings.from_env({}).report_email_period == "off"

"""Alerts mailed over real SMTP: one email per low-stock crossing, one per absence."""

from pathlib import Path

from sqlalchemy import select

from api.clock import FakeClock
from api.services.alert_sender import RETRY_AFTER_S, AlertSender
from api.services.mailer import MemoryMailer, SmtpMailer
from api.services.refunds import settle
from schema.models import Alert, Refund
from tests.admin.smtp_sink import smtp_sink
from tests.admin.support import admin_client, admin_stack, post_form, register, vend

OPS = "ops@example.com"


def _smtp(port: int) -> dict[str, object]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "alert_email": OPS,
        "smtp_from": "vend@example.com",
    }


async def test_one_low_stock_email_per_threshold_crossing(tmp_path: Path) -> None:
    async with smtp_sink() as sink, admin_stack(tmp_path, **_smtp(sink.port)) as stack:
        services = stack.services
        sender = AlertSender(services.ctx, SmtpMailer.from_settings(stack.settings), stack.settings)
        await register(services, "m1", stock=6, capacity=10, name="Lobby")
        assert (await sender.run_once()).sent == 0
        await vend(services, "m1", 2)  # 4 left: above the threshold of 3
        await sender.run_once()
        await vend(services, "m1", 2)  # 2 left: crossed
        first = await sender.run_once()
        assert (first.raised, first.sent) == (1, 1)
        await vend(services, "m1", 1)  # 1 left: still below, no new email
        assert (await sender.run_once()).sent == 0
        await sender.run_once()
        assert sink.subjects() == ["[SmartVend] Low stock: m1"]
        message = sink.messages[0]
        assert message["To"] == OPS and message["From"] == "vend@example.com"
        assert "2 of 10 left (threshold 3)" in sink.body(0)
        async with admin_client(stack) as admin:  # the operator restocks from the dashboard
            done = await post_form(
                admin, "/admin/machines/m1", "/admin/machines/m1/stock", {"stock": "5"}
            )
            assert done.status_code == 303
            assert (await sender.run_once()).sent == 0
            await vend(services, "m1", 2)  # 3 left: crossed again
            ran = await post_form(admin, "/admin/alerts", "/admin/alerts/run", {})
            assert ran.headers["location"] == "/admin/alerts?raised=1&sent=1&failed=0"
            page = await admin.get("/admin/alerts")
            assert page.text.count("low stock") == 2 and "not sent" not in page.text
        assert sink.subjects() == ["[SmartVend] Low stock: m1"] * 2
        async with services.ctx.db.begin() as s:
            alerts = (await s.scalars(select(Alert))).all()
        assert len(alerts) == 2 and all(a.sent_at is not None for a in alerts)


async def test_offline_failed_vend_and_failed_refund_alerts(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = {**_smtp(0), "offline_alert_minutes": 10}
    async with smtp_sink() as sink:
        settings["smtp_port"] = sink.port
        async with admin_stack(tmp_path, clock=clock, **settings) as stack:
            services = stack.services
            sender = AlertSender(
                services.ctx, SmtpMailer.from_settings(stack.settings), stack.settings
            )
            await register(services, "m1", stock=9)
            await register(services, "never", online=False)
            await services.machines.apply_status("m1", {"state": "lost", "boot": 1})
            clock.advance(9 * 60)
            assert (await sender.run_once()).raised == 0
            clock.advance(2 * 60)
            assert (await sender.run_once()).sent == 1
            assert (await sender.run_once()).sent == 0
            assert sink.subjects() == ["[SmartVend] Machine offline: m1"]
            assert "offline for 11 minutes" in sink.body(0)
            await services.machines.apply_status("m1", {"state": "online", "boot": 2})
            order_id = await vend(services, "m1", 3, dispensed=1)
            await sender.run_once()
            assert sink.subjects("Vend failed") == ["[SmartVend] Vend failed: m1"]
            body = sink.body(-1).splitlines()
            dashboard = f"http://{stack.settings.http_host}:{stack.settings.http_port}/admin"
            assert body[0] == "Vend failed: A vend on Lobby (m1) ended failed (motor jam)"
            assert f"Order: {dashboard}/orders/{order_id}" in body
            assert f"Machine: {dashboard}/machines/m1" in body
            assert f"All alerts: {dashboard}/alerts" in body
            async with services.ctx.db.begin() as s:
                refund = await s.scalar(select(Refund).where(Refund.order_id == order_id))
                assert refund is not None
                refund.status = "pending"
                refund.last_error = "gateway said no"
                await settle(s, refund, "failed", clock.now())
            await sender.run_once()
            await sender.run_once()
            assert sink.subjects("Refund failed") == ["[SmartVend] Refund failed: m1"]
            assert len(sink.messages) == 3
            refund_body = sink.body(-1)
            assert refund_body.startswith(f"Refund failed: Refund {refund.id} of ₹50.00 for order")
            assert f"Order: {dashboard}/orders/{order_id}" in refund_body
            async with admin_client(stack) as admin:  # order ids on the alerts page are links
                page = await admin.get("/admin/alerts")
                assert page.text.count(f'href="/admin/orders/{order_id}"') == 2


async def test_a_failed_send_is_recorded_and_retried(tmp_path: Path) -> None:
    clock = FakeClock()
    async with admin_stack(tmp_path, clock=clock, alert_email=OPS) as stack:
        services = stack.services
        mailer = MemoryMailer(fail_with="connection refused")
        sender = AlertSender(services.ctx, mailer, stack.settings)
        await register(services, "m1", stock=1)
        run = await sender.run_once()
        assert (run.raised, run.sent, run.failed) == (1, 0, 1)
        async with services.ctx.db.begin() as s:
            alert = await s.scalar(select(Alert))
            assert alert is not None and alert.sent_at is None
            assert alert.send_error == "connection refused"
        mailer.fail_with = None
        assert (await sender.run_once()).sent == 0  # not before the retry delay
        clock.advance(RETRY_AFTER_S)
        assert (await sender.run_once()).sent == 1
        assert [str(m["Subject"]) for m in mailer.sent] == ["[SmartVend] Low stock: m1"]
        other = AlertSender(services.ctx, mailer, stack.settings)
        assert (await other.run_once()).sent == 0


async def test_no_mail_without_alert_email(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack:
        mailer = MemoryMailer()
        sender = AlertSender(stack.services.ctx, mailer, stack.settings)
        await register(stack.services, "m1", stock=0)
        run = await sender.run_once()
        assert (run.raised, run.sent) == (1, 0) and mailer.sent == []
        async with admin_client(stack) as admin:
            page = await admin.get("/admin/alerts")
            assert "Mail is off" in page.text and "mail off" in page.text
            assert "not sent" not in page.text  # nothing failed: mail is simply off

"""Mailing alerts to the operator, off the request path.

``run_once`` runs the checks and mails every alert not sent yet to
``ALERT_EMAIL``.  An alert is claimed (``sent_at`` set) in its own
transaction before it is sent, so two senders never mail it twice; a failed
send gives the claim back with ``send_error`` and is tried again later.
"""

import logging
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import select, update

from api.services.alert_checks import AlertChecks
from api.services.context import Context
from api.services.mailer import Mailer, MailNotSent, compose
from api.settings import Settings
from schema.models import Alert

log = logging.getLogger(__name__)

SUBJECTS = {
    "low_stock": "Low stock",
    "offline": "Machine offline",
    "failed_vend": "Vend failed",
    "refund_failed": "Refund failed",
}
MAX_AGE_S = 86400  # an alert not mailed within a day is not mailed at all
RETRY_AFTER_S = 60
BATCH = 50


@dataclass(frozen=True)
class AlertRun:
    raised: int
    sent: int
    failed: int


def dashboard_url(settings: Settings) -> str:
    """Where operators open the dashboard: FRONTEND_URL, or this server's own address."""
    if settings.frontend_url:
        return settings.frontend_url.rstrip("/") + "/admin"
    return f"http://{settings.http_host}:{settings.http_port}/admin"


def summary(alert: Alert, title: str) -> str:
    """One line: the alert's first clause ("Lobby (m1) is low on stock")."""
    cut = min(
        (i for i in (alert.message.find(": "), alert.message.find(". ")) if i > 0), default=-1
    )
    line = alert.message if cut < 0 else alert.message[:cut]
    return f"{title}: {line.rstrip('.')}"[:150]


def alert_body(alert: Alert, title: str, dashboard: str) -> str:
    """The one-line summary, the whole message, then links into the dashboard."""
    lines = [summary(alert, title), "", alert.message, ""]
    if alert.order_id:
        lines.append(f"Order: {dashboard}/orders/{alert.order_id}")
    if alert.machine_id:
        lines.append(f"Machine: {dashboard}/machines/{alert.machine_id}")
    lines.append(f"All alerts: {dashboard}/alerts")
    return "\n".join(lines) + "\n"


class AlertSender:
    def __init__(self, ctx: Context, mailer: Mailer, settings: Settings) -> None:
        self.ctx = ctx
        self.mailer = mailer
        self.settings = settings
        self.checks = AlertChecks(ctx, settings.offline_alert_minutes * 60)
        self._retry_at: dict[int, int] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.settings.alert_email) and self.mailer.configured

    async def run_once(self) -> AlertRun:
        raised = await self.checks.run()
        sent, failed = await self.send_pending() if self.enabled else (0, 0)
        return AlertRun(raised=raised, sent=sent, failed=failed)

    async def send_pending(self) -> tuple[int, int]:
        """Mail unsent alerts; returns (sent, failed)."""
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            await s.execute(
                update(Alert)
                .where(
                    Alert.sent_at.is_(None),
                    Alert.created_at < now - MAX_AGE_S,
                    Alert.send_error.is_(None),
                )
                .values(send_error="not mailed: older than a day")
            )
            pending = (
                await s.scalars(
                    select(Alert)
                    .where(Alert.sent_at.is_(None), Alert.created_at >= now - MAX_AGE_S)
                    .order_by(Alert.id)
                    .limit(BATCH)
                )
            ).all()
        sent = failed = 0
        for alert in pending:
            if self._retry_at.get(alert.id, 0) > now or not await self._claim(alert.id, now):
                continue
            try:
                await self.mailer.send(self._message(alert))
            except MailNotSent as exc:
                failed += 1
                self._retry_at[alert.id] = now + RETRY_AFTER_S
                log.warning("alert %d not mailed: %s", alert.id, exc.message)
                await self._release(alert.id, exc.message)
            else:
                sent += 1
                self._retry_at.pop(alert.id, None)
        return sent, failed

    def _message(self, alert: Alert) -> EmailMessage:
        title = SUBJECTS.get(alert.kind, alert.kind.replace("_", " ").capitalize())
        where = f": {alert.machine_id}" if alert.machine_id else ""
        body = alert_body(alert, title, dashboard_url(self.settings))
        assert self.settings.alert_email is not None
        return compose(
            self.settings.smtp_from, self.settings.alert_email, f"[SmartVend] {title}{where}", body
        )

    async def _claim(self, alert_id: int, now: int) -> bool:
        async with self.ctx.db.begin() as s:
            claimed = await s.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.sent_at.is_(None))
                .values(sent_at=now, send_error=None)
            )
            return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    async def _release(self, alert_id: int, error: str) -> None:
        async with self.ctx.db.begin() as s:
            await s.execute(
                update(Alert)
                .where(Alert.id == alert_id)
                .values(sent_at=None, send_error=error[:300])
            )

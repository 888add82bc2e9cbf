"""The emailed sales report: yesterday's (daily) or last week's (weekly), to ``ALERT_EMAIL``.

``REPORT_EMAIL_PERIOD`` is ``off`` (the default), ``daily`` or ``weekly``. A report
goes out once its period is over and the local clock has passed
``REPORT_EMAIL_HOUR`` (daily: each day; weekly: each Monday). Only the latest
finished period is sent: a server that was down for a week sends one report, not
seven.

Each period's report is claimed in ``report_mails`` before it is sent (a unique
row per period), so restarts and several workers send it once. A failed send
keeps the claim with its error and is tried again ``RETRY_AFTER_S`` later, at
most ``MAX_ATTEMPTS`` times.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from api.money import money
from api.services.alert_sender import dashboard_url
from api.services.context import Context
from api.services.mailer import Mailer, MailNotSent, compose
from api.settings import Settings
from api.views.reports import Report, Reports
from api.views.reports_window import Group, Period, Window, window
from schema.models import ReportMail

log = logging.getLogger(__name__)

RETRY_AFTER_S = 300
MAX_ATTEMPTS = 5
LISTED = 20  # machines named in the email; the rest are on the dashboard
PERIODS = {"daily": Period.DAY, "weekly": Period.WEEK}


@dataclass(frozen=True)
class Due:
    period: str  # daily | weekly
    window: Window


def due(settings: Settings, ctx: Context, now: int) -> Due | None:
    """The period whose report is due at ``now``: the one that just ended, once the local
    clock has passed the hour on its next day (daily) or next Monday (weekly)."""
    if settings.report_email_period not in PERIODS:
        return None
    calendar = ctx.calendar
    today = calendar.local(now).date()
    if settings.report_email_period == "daily":
        opens, last = today, today - dt.timedelta(days=1)
    else:
        opens = today - dt.timedelta(days=today.weekday())  # this week's Monday
        last = opens - dt.timedelta(days=7)
    if now < calendar.midnight(opens) + settings.report_email_hour * 3600:
        return None  # not yet the hour: the one before was sent at its own
    period = PERIODS[settings.report_email_period]
    return Due(settings.report_email_period, window(calendar, now, period, last))


def body(report: Report, dashboard: str, zone: str) -> str:
    w = report.window
    t = report.totals
    lines = [
        f"SmartVend sales, {w.title()} (local days, {zone})",
        "",
        f"Sales {money(t.amount)} ({t.units} units) · refunded by hand {money(t.refunded)}"
        f" · net {money(t.net)}",
        f"Ratings: {t.up} thumbs up, {t.down} thumbs down",
        "",
        "By machine (net, units):",
    ]
    sold = [r for r in report.rows if r.figures.units or r.figures.refunded]
    for row in sold[:LISTED]:
        where = f", {row.location}" if row.location else ""
        lines.append(
            f"  {row.name} ({row.key}){where}: {money(row.figures.net)}, {row.figures.units}"
        )
    if len(sold) > LISTED:
        lines.append(f"  … and {len(sold) - LISTED} more on the dashboard")
    if not sold:
        lines.append("  No sales.")
    query = {"period": w.period.value, "date": w.first.isoformat()}
    lines += ["", f"Full report: {dashboard}/reports?{urlencode(query)}"]
    return "\n".join(lines) + "\n"


class ReportMails:
    def __init__(self, ctx: Context, mailer: Mailer, settings: Settings) -> None:
        self.ctx = ctx
        self.mailer = mailer
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return (
            self.settings.report_email_period in PERIODS
            and bool(self.settings.alert_email)
            and self.mailer.configured
        )

    async def run_once(self) -> bool:
        """Send the latest finished period's report if nobody has; True when this call sent it."""
        if not self.enabled:
            return False
        now = self.ctx.clock.now()
        found = due(self.settings, self.ctx, now)
        if found is None or not await self._claim(found, now):
            return False
        report = await Reports(self.ctx).summary(found.window, Group.MACHINE)
        text = body(report, dashboard_url(self.settings), self.ctx.calendar.name)
        subject = (
            f"[SmartVend] {'Daily' if found.period == 'daily' else 'Weekly'} sales: "
            f"{found.window.title()}, {money(report.totals.net)} net"
        )
        assert self.settings.alert_email is not None
        message = compose(self.settings.smtp_from, self.settings.alert_email, subject, text)
        try:
            await self.mailer.send(message)
        except MailNotSent as exc:
            log.warning("%s report not mailed: %s", found.period, exc.message)
            await self._mark(found, None, exc.message[:300])
            return False
        await self._mark(found, self.ctx.clock.now(), None)
        return True

    async def _claim(self, found: Due, now: int) -> bool:
        """Take the period's report: a new row, or one whose last try failed long enough ago."""
        start = found.window.since
        try:
            async with self.ctx.db.begin() as s:
                s.add(
                    ReportMail(
                        period=found.period,
                        period_start=start,
                        period_end=found.window.until,
                        recipients=(self.settings.alert_email or "")[:500],
                        claimed_at=now,
                        attempts=1,
                    )
                )
            return True
        except IntegrityError:
            pass  # claimed before: sent, being sent, or failed
        async with self.ctx.db.begin() as s:
            taken = await s.execute(
                update(ReportMail)
                .where(
                    ReportMail.period == found.period,
                    ReportMail.period_start == start,
                    ReportMail.sent_at.is_(None),
                    ReportMail.attempts < MAX_ATTEMPTS,
                    ReportMail.claimed_at <= now - RETRY_AFTER_S,
                )
                .values(claimed_at=now, attempts=ReportMail.attempts + 1)
            )
            return bool(taken.rowcount == 1)  # type: ignore[attr-defined]

    async def _mark(self, found: Due, sent_at: int | None, error: str | None) -> None:
        async with self.ctx.db.begin() as s:
            await s.execute(
                update(ReportMail)
                .where(
                    ReportMail.period == found.period,
                    ReportMail.period_start == found.window.since,
                )
                .values(sent_at=sent_at, last_error=error)
            )


async def latest(ctx: Context) -> ReportMail | None:
    """The most recent report mailed or tried, for the dashboard to say so."""
    async with ctx.db() as s:
        query = select(ReportMail).order_by(ReportMail.claimed_at.desc(), ReportMail.id.desc())
        return (await s.scalars(query.limit(1))).first()

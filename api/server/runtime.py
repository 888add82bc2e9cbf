"""The composition root: ``open_runtime(settings)`` builds SmartVend once.

One bootstrap builds everything a running SmartVend is made of, each piece
once: settings, the database, the change feed, the payment gateway, the
services and read models, the admin token signer, the live-stream gate, the
alert and webhook senders, the periodic jobs and, for a serving process, the
leader role and the MQTT link. What it builds is one typed object,
:class:`Runtime`; the HTTP routes (``api.http.deps.runtime(request)``), the
CLI, the workers and the tests all take what they need from it.

Nothing here runs at import.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.clock import Clock, LocalCalendar, SystemClock
from api.http.auth import AdminTokens
from api.http.streams import StreamGate
from api.infra import leader
from api.infra.changes import Notifier
from api.infra.changes_from_commits import CommitFeed
from api.infra.changes_pg import open_notifier, uses_postgres
from api.infra.db import create_engine, session_factory
from api.observability.collectors import watch_pool
from api.payments.base import PaymentGateway
from api.payments.razorpay_gateway import RazorpayGateway
from api.payments.test_gateway import TestGateway
from api.payments.test_gateway_records import DatabaseRecords
from api.security.derived_keys import derive_secret
from api.server import periodic
from api.services.admins import Admins
from api.services.alert_sender import AlertSender
from api.services.alerts import Alerts
from api.services.audit import Audit
from api.services.budget_store_pg import PostgresBudgets
from api.services.budgets import BudgetStore, MemoryBudgets
from api.services.catalogue import Catalogue
from api.services.container import Services
from api.services.context import Context
from api.services.dispense import Dispense
from api.services.feedback import Feedbacks
from api.services.firmware import Firmware
from api.services.locks import Locks
from api.services.machines import Machines
from api.services.mailer import SmtpMailer
from api.services.manual_refund import ManualRefunds
from api.services.orders import Orders
from api.services.policy import VendPolicy
from api.services.reconcile import Reconciler
from api.services.refunds import Refunds
from api.services.report_mail import ReportMails
from api.services.reservation import Reservations
from api.services.rollouts import Rollouts
from api.services.slots import Slots
from api.services.sweeper import Sweeper
from api.services.webhooks import Webhooks
from api.services.webhooks_out import OutgoingWebhooks, WebhookSender
from api.settings import Settings
from api.views.admin import AdminViews
from api.views.feedback import FeedbackViews
from api.views.fleet_stats import FleetStats
from api.views.orders import OrderViews
from api.views.public import Views

if TYPE_CHECKING:  # the MQTT side is imported only by a process that speaks MQTT
    from api.server.mqtt_link import MqttLink

log = logging.getLogger(__name__)


def build_gateway(
    settings: Settings, db: async_sessionmaker[AsyncSession] | None = None
) -> PaymentGateway:
    if settings.payments_live:
        assert settings.razorpay_key_id and settings.razorpay_key_secret
        webhook = settings.razorpay_webhook_secret
        return RazorpayGateway(
            settings.razorpay_key_id,
            str(settings.razorpay_key_secret),
            str(webhook) if webhook else None,
            base_url=settings.razorpay_base_url,
        )
    records = DatabaseRecords(db) if db is not None else None
    return TestGateway(derive_secret(settings, "test-gateway"), records)


def build_budgets(settings: Settings, engine: AsyncEngine) -> BudgetStore:
    """Rate budgets every worker shares on PostgreSQL; this process's own on SQLite."""
    return PostgresBudgets(engine) if uses_postgres(settings) else MemoryBudgets()


def build_services(
    db: async_sessionmaker[AsyncSession],
    clock: Clock,
    policy: VendPolicy,
    gateway: PaymentGateway,
    budgets: BudgetStore | None = None,
    calendar: LocalCalendar | None = None,
) -> Services:
    """Every service and read model, wired once from their ports."""
    ctx = Context(
        db=db,
        clock=clock,
        policy=policy,
        budgets=budgets or MemoryBudgets(),
        calendar=calendar or LocalCalendar(),
    )
    dispense = Dispense(ctx)
    orders = Orders(ctx, gateway)
    refunds = Refunds(ctx, gateway)
    return Services(
        ctx=ctx,
        admins=Admins(ctx),
        alerts=Alerts(ctx),
        machines=Machines(ctx),
        locks=Locks(ctx, Locks.guard_for(ctx)),
        reservations=Reservations(ctx),
        orders=orders,
        dispense=dispense,
        feedback=Feedbacks(ctx),
        refunds=refunds,
        sweeper=Sweeper(ctx, dispense),
        views=Views(ctx),
        webhooks=Webhooks(ctx, orders, refunds, gateway),
        reconciler=Reconciler(ctx, orders, refunds, gateway),
        gateway=gateway,
        admin_views=AdminViews(ctx),
        order_views=OrderViews(ctx),
        feedback_views=FeedbackViews(ctx),
        fleet_stats=FleetStats(ctx),
        manual_refunds=ManualRefunds(ctx),
        firmware=Firmware(ctx),
        rollouts=Rollouts(ctx),
        catalogue=Catalogue(ctx),
        slots=Slots(ctx),
        audit=Audit(ctx),
        outgoing_webhooks=OutgoingWebhooks(ctx),
    )


@dataclass(frozen=True)
class Job:
    """A periodic job: ``work`` every ``interval_s``, on the leader only."""

    interval_s: float
    name: str
    work: Callable[[], Awaitable[object]]


def jobs(
    services: Services, settings: Settings, alerts: AlertSender, hooks: WebhookSender
) -> tuple[Job, ...]:
    """Every periodic job; the one place a new one goes."""
    found = [
        Job(1.0, "deadlines", services.sweeper.tick),
        Job(5.0, "refunds", services.refunds.process_pending),
        Job(30.0, "reconcile", services.reconciler.run_once),
        Job(1.0, "rollouts", services.rollouts.tick),
    ]
    if settings.webhook_interval_s > 0:
        found.append(Job(float(settings.webhook_interval_s), "webhooks", hooks.run_once))
    if settings.alert_interval_s > 0:
        found.append(Job(float(settings.alert_interval_s), "alerts", alerts.run_once))
    mails = ReportMails(services.ctx, alerts.mailer, settings)
    if mails.enabled:  # the emailed sales report (REPORT_EMAIL_PERIOD)
        found.append(Job(60.0, "report mail", mails.run_once))
    return tuple(found)


@dataclass(frozen=True)
class Runtime:
    """A running SmartVend, built once by :func:`open_runtime`."""

    settings: Settings
    engine: AsyncEngine
    services: Services
    notifier: Notifier
    tokens: AdminTokens
    streams: StreamGate
    alert_sender: AlertSender
    webhook_sender: WebhookSender
    jobs: tuple[Job, ...]
    # A serving process only (``serving=True``); None for the CLI and scripts.
    leadership: leader.Leadership | None = None
    mqtt: "MqttLink | None" = None

    @property
    def mqtt_connected(self) -> bool:
        return self.mqtt is not None and self.mqtt.connected

    async def disconnect(self, username: str) -> None:
        """Close an MQTT client's live connection (its key was rotated or revoked)."""
        if self.mqtt is not None:
            await self.mqtt.disconnect(username)


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    gateway: PaymentGateway | None = None,
    serving: bool = False,
    mqtt: bool = True,
) -> AsyncIterator[Runtime]:
    """SmartVend built from ``settings``; ``serving`` also creates the first admin
    (``ADMIN_PASSWORD``), takes part in the leader election, starts the MQTT link
    (``mqtt``) and runs the periodic jobs on the leader, stopping all in reverse order."""
    settings = settings.with_dev_secret()
    engine = create_engine(settings.async_database_url)
    try:
        db = session_factory(engine)
        services = build_services(
            db,
            clock or SystemClock(),
            VendPolicy.from_settings(settings),
            gateway or build_gateway(settings, db),
            build_budgets(settings, engine),
            LocalCalendar(settings.timezone),
        )
        alert_sender = AlertSender(services.ctx, SmtpMailer.from_settings(settings), settings)
        webhook_sender = WebhookSender(services.ctx)
        async with open_notifier(settings) as notifier:  # across processes on PostgreSQL
            feed = CommitFeed(db, notifier)
            feed.start()
            try:
                rt = Runtime(
                    settings=settings,
                    engine=engine,
                    services=services,
                    notifier=notifier,
                    tokens=AdminTokens(derive_secret(settings, "admin-tokens")),
                    streams=StreamGate(settings.max_streams, settings.max_streams_per_client),
                    alert_sender=alert_sender,
                    webhook_sender=webhook_sender,
                    jobs=jobs(services, settings, alert_sender, webhook_sender),
                )
                if not serving:
                    yield rt
                else:
                    async with _serving(rt, mqtt) as served:
                        yield served
            finally:
                notifier.close()
                feed.stop()
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _serving(rt: Runtime, mqtt: bool) -> AsyncIterator[Runtime]:
    """The leader role, the MQTT link and the periodic jobs of a serving process."""
    settings = rt.settings
    if settings.admin_password is not None and await rt.services.admins.ensure(
        "admin", str(settings.admin_password)
    ):
        log.info("created admin user 'admin' from ADMIN_PASSWORD")
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(watch_pool(rt.engine))
        leadership = await stack.enter_async_context(
            leader.campaigning(leader.for_settings(settings))
        )
        link = None
        if mqtt:
            from api.server.mqtt_link import start_mqtt  # only servers that speak MQTT

            link = await stack.enter_async_context(
                start_mqtt(settings, rt.services, rt.notifier, leadership)
            )
        served = replace(rt, leadership=leadership, mqtt=link)
        # Singleton work: only the leader among several workers runs it.
        tasks = [
            asyncio.create_task(
                periodic.every(job.interval_s, job.name, leader.leader_only(leadership, job.work)),
                name=f"{periodic.TASK_PREFIX}{job.name}",
            )
            for job in rt.jobs
        ]
        try:
            yield served
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

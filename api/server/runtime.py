"""Building the running pieces from settings: engine, gateway, services.

Nothing here runs at import; ``open_runtime`` is used by the app's lifespan
and by the CLI alike, so both wire SmartVend the same way.
"""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.clock import Clock, LocalCalendar, SystemClock
from api.infra.changes import Notifier
from api.infra.changes_from_commits import CommitFeed
from api.infra.changes_pg import open_notifier, uses_postgres
from api.infra.db import create_engine, session_factory
from api.payments.base import PaymentGateway
from api.payments.razorpay_gateway import RazorpayGateway
from api.payments.test_gateway import TestGateway
from api.payments.test_gateway_records import DatabaseRecords
from api.security.derived_keys import derive_secret
from api.services.budget_store_pg import PostgresBudgets
from api.services.budgets import BudgetStore, MemoryBudgets
from api.services.container import Services
from api.services.policy import VendPolicy
from api.settings import Settings


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


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    services: Services
    notifier: Notifier


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, *, clock: Clock | None = None, gateway: PaymentGateway | None = None
) -> AsyncIterator[Runtime]:
    settings = settings.with_dev_secret()
    engine = create_engine(settings.async_database_url)
    try:
        db = session_factory(engine)
        services = Services.build(
            db,
            clock or SystemClock(),
            VendPolicy.from_settings(settings),
            gateway or build_gateway(settings, db),
            build_budgets(settings, engine),
            LocalCalendar(settings.timezone),
        )
        async with open_notifier(settings) as notifier:  # across processes on PostgreSQL
            feed = CommitFeed(db, notifier)
            feed.start()
            try:
                yield Runtime(
                    settings=settings, engine=engine, services=services, notifier=notifier
                )
            finally:
                notifier.close()
                feed.stop()
    finally:
        await engine.dispose()

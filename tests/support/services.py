"""Services over a fresh database built from the models, for service-level tests."""

import contextlib
from collections.abc import AsyncIterator

from api.clock import Clock
from api.db import create_engine, session_factory
from api.payments.base import PaymentGateway
from api.services.container import Services
from api.services.policy import VendPolicy
from schema.models import Base


@contextlib.asynccontextmanager
async def built_services(
    url: str, clock: Clock, gateway: PaymentGateway, policy: VendPolicy | None = None
) -> AsyncIterator[Services]:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield Services.build(session_factory(engine), clock, policy or VendPolicy(), gateway)
    finally:
        await engine.dispose()
